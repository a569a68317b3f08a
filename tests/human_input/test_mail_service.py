"""Email retries and status at service level (human-input.md §9, scenario 29): a 451 then 250 is
``sent`` after two attempts, a 550 fails at once, the delivery aggregates, the run is unaffected."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sluice.adapters.mail import SmtpMailer
from sluice.adapters.sql import forms_repo
from sluice.services.human_input_mail import FormMailer, bodies, clean_subject
from tests.human_input.harness import Harness
from tests.human_input.smtp import SmtpCapture


@pytest.fixture
def smtp() -> Iterator[SmtpCapture]:
    capture = SmtpCapture().start()
    yield capture
    capture.stop()


def test_subject_and_body_are_sanitised() -> None:
    assert clean_subject("Hi\r\n<b>x</b> team") == "Hi x team"
    text, html = bodies(
        'Go <img src=x onerror="y"> {{#url#}}\n\n<a style="c" href="javascript:z">k</a>', "http://h/form/T"
    )
    assert "http://h/form/T" in text and "<img" not in html and "style=" not in html
    assert "javascript:" not in html and '<a href="http://h/form/T">' in html
    assert bodies("no link", "http://h/form/T")[0].endswith("\n\nhttp://h/form/T")


async def test_retry_on_451_and_fail_on_550(hx: Harness, smtp: SmtpCapture) -> None:
    auth = await hx.app("review_email.yml")
    run_id = await hx.start(auth)
    await hx.wait_status(run_id, "paused")
    (form,) = await hx.forms_of(run_id)
    smtp.handler.fail_first = {
        "a@example.com": "451 4.3.0 try later",
        "b@example.com": "550 5.1.1 no such user",
    }
    mailer = FormMailer(hx.db, SmtpMailer("127.0.0.1", smtp.port), "http://127.0.0.1", delays=(0.05,))
    await mailer.send_form(form.id)
    rows = {r.recipient_payload.get("email"): r for r in await hx.recipients(form.id)}
    assert (rows["a@example.com"].send_status, rows["a@example.com"].send_attempts) == ("sent", 2)
    assert rows["a@example.com"].sent_at is not None
    assert (rows["b@example.com"].send_status, rows["b@example.com"].send_attempts) == ("failed", 1)
    assert "550" in (rows["b@example.com"].last_error or "")
    async with hx.db() as session:
        (mail,) = [
            d for d in await forms_repo.deliveries(session, form.id) if d.delivery_method_type == "email"
        ]
    assert mail.send_status == "partially_sent"
    assert [m.to for m in smtp.handler.messages] == [["a@example.com"]]
    assert (await hx.run(run_id)).status == "paused"

"""Email delivery to a local SMTP server and the web form in headless Chromium (human-input.md §12
scenarios 24, 25, 27; issue must-show 3). Screenshots go to ``test-artifacts/``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.human_input.harness import FIXTURES
from tests.human_input.live import auth, wait_status
from tests.human_input.smtp import SmtpCapture, parts
from tests.support.servers import LiveServer

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
LINK = re.compile(r"(http://127\.0\.0\.1:\d+/form/[A-Za-z0-9]{22})")


@pytest.fixture
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield instance
        finally:
            instance.close()


def mailed_run(
    server: LiveServer, smtp: SmtpCapture, client: httpx.Client, author: str
) -> tuple[str, str, dict]:
    key = server.create_key(server.import_app(FIXTURES / "review_email.yml"))
    before = len(smtp.handler.messages)
    body = {"inputs": {"author": author, "note": "looks ok"}, "response_mode": "streaming", "user": "u1"}
    with client.stream("POST", "/v1/workflows/run", json=body, headers=auth(key)) as resp:
        text = "".join(resp.iter_text())
    assert '"event":"workflow_paused"' in text
    run_id = re.search(r'"workflow_run_id":"([0-9a-f-]{36})"', text).group(1)  # type: ignore[union-attr]
    smtp.wait_for(before + 2)
    mine = {}
    for captured in smtp.handler.messages[before:]:
        if author in str(captured.message["Subject"]):
            mine[captured.to[0]] = captured
    return key, run_id, mine


def test_emails_one_per_address_with_own_links(hitl_server: LiveServer, smtp_capture: SmtpCapture) -> None:
    with httpx.Client(base_url=hitl_server.base_url, timeout=60) as client:
        key, run_id, mails = mailed_run(hitl_server, smtp_capture, client, f"Mail{hitl_server.mode}")
        assert sorted(mails) == ["a@example.com", "b@example.com"]
        links = set()
        for captured in mails.values():
            message = captured.message
            assert message["Subject"] == f"Review draft by Mail{hitl_server.mode} now"
            assert message["Auto-Submitted"] == "auto-generated"
            body = parts(message)
            assert set(body) == {"plain", "html"}
            html = body["html"]
            assert "<script" not in html and "style=" not in html and 'href="javascript:' not in html
            (link,) = LINK.findall(body["plain"])
            assert f'<a href="{link}">' in html
            links.add(link)
        assert len(links) == 2
        token = next(iter(links)).rsplit("/", 1)[1]
        shown = client.get(f"/api/form/human_input/{token}")
        assert shown.status_code == 200
        assert wait_status(client, key, run_id, "paused")["status"] == "paused"


@pytest.mark.parametrize("hitl_server", ["embedded"], indirect=True)
def test_browser_answers_the_emailed_form(
    hitl_server: LiveServer, smtp_capture: SmtpCapture, browser: Browser
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    with httpx.Client(base_url=hitl_server.base_url, timeout=60) as client:
        key, run_id, mails = mailed_run(hitl_server, smtp_capture, client, "Browsy")
        (link,) = LINK.findall(parts(mails["a@example.com"].message)["plain"])
        page = browser.new_page(java_script_enabled=False)
        page.goto(link)
        assert page.locator("h1").inner_text() == "Review draft"
        assert page.locator("textarea#input-comment").input_value() == "looks ok"
        assert page.locator("select#input-verdict").count() == 1
        page.screenshot(path=str(ARTIFACTS / "human-input-form-open.png"), full_page=True)

        page.locator("button[value=approve]").click()  # no verdict chosen: the 400 page
        assert page.locator("#error-summary").is_visible()
        assert page.locator("select#input-verdict").get_attribute("aria-describedby") == "err-verdict"

        page.locator("textarea#input-comment").fill("ship it")
        page.locator("select#input-verdict").select_option("good")
        page.locator("button[value=approve]").click()
        page.wait_for_url(re.compile(r".*\?done=1$"))
        assert "Response recorded" in page.locator("#form-state").inner_text()
        assert "Approve" in page.locator("#form-state").inner_text()
        page.screenshot(path=str(ARTIFACTS / "human-input-form-submitted.png"), full_page=True)

        finished = wait_status(client, key, run_id, "succeeded", "failed", "stopped")
        assert finished["status"] == "succeeded" and finished["outputs"] == {"result": "approve: ship it"}
        page.goto(link)
        assert "already been submitted" in page.locator("#form-state").inner_text()
        assert page.locator("button").count() == 0
        page.close()

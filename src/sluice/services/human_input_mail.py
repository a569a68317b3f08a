"""Email delivery of human-input forms (human-input.md §9): one message per email recipient, each
with its own token link; status per recipient and aggregated on the delivery; retries on
connection errors and 4xx (now, +30 s, +120 s); 5xx fails at once. Email never affects the run.

The body is the method's Markdown-ish text with ``{{#url#}}`` replaced by the link; author-written
HTML is stripped and everything else escaped, so the HTML part holds only ``p``, ``br`` and ``a``.
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from sluice.adapters.mail import MailError
from sluice.adapters.sql import forms_repo as forms
from sluice.adapters.sql.tables import HumanInputDelivery, HumanInputRecipient

log = logging.getLogger("sluice.human_input.mail")

URL = "{{#url#}}"
TAG = re.compile(r"<[^>]*>")
LINK = re.compile(r"(https?://[^\s<>\"]+)")


class Mailer(Protocol):
    async def send(self, to: str, subject: str, text: str, html: str) -> None: ...


def clean_subject(subject: str) -> str:
    """CR/LF → space, tags removed, whitespace collapsed (``"Hi\\r\\n<b>x</b> team"`` → ``"Hi x team"``)."""
    return " ".join(TAG.sub("", subject.replace("\r", " ").replace("\n", " ")).split())


def bodies(body: str, link: str) -> tuple[str, str]:
    """``(text, html)`` of a message: the link in place of ``{{#url#}}`` (appended if absent)."""
    text = TAG.sub("", body)
    text = text.replace(URL, link) if URL in text else f"{text.rstrip()}\n\n{link}"
    paragraphs = [p for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]

    def render(paragraph: str) -> str:
        escaped = html.escape(paragraph, quote=True)
        linked = LINK.sub(lambda m: f'<a href="{m.group(1)}">{m.group(1)}</a>', escaped)
        return "<p>" + linked.replace("\n", "<br>") + "</p>"

    return text, "\n".join(render(p) for p in paragraphs)


class FormMailer:
    def __init__(
        self,
        db: async_sessionmaker[AsyncSession],
        mailer: Mailer | None,
        base_url: str,
        *,
        enabled: bool = True,
        max_attempts: int = 3,
        delays: Sequence[float] = (30, 120),
    ) -> None:
        self._db = db
        self._mailer = mailer
        self._base_url = base_url.rstrip("/")
        self._enabled = enabled
        self._max_attempts = max_attempts
        self._delays = tuple(delays)
        self._tasks: set[asyncio.Task[None]] = set()

    def schedule(self, form_ids: Sequence[str]) -> None:
        """After the pause commit: send in the background (the run never waits for mail)."""
        for form_id in form_ids:
            task = asyncio.get_running_loop().create_task(
                self.send_form(form_id), name=f"hitl-mail:{form_id}"
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def send_form(self, form_id: str) -> None:
        try:
            await self._send_form(form_id)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("form %s: email delivery failed", form_id)

    async def _send_form(self, form_id: str) -> None:
        async with self._db() as session:
            form = await forms.get_form(session, form_id)
            deliveries = [
                d for d in await forms.deliveries(session, form_id) if d.delivery_method_type == "email"
            ]
            rows = list(await forms.recipients(session, form_id))
        if form is None or not deliveries:
            return
        skip = None
        if not self._enabled:
            skip = "email_disabled"
        elif self._mailer is None:
            skip = "mail_not_configured"
        elif form.status != "waiting":
            skip = "form_closed"
        for delivery in deliveries:
            targets = [
                r for r in rows if r.delivery_id == delivery.id and r.recipient_type.startswith("email")
            ]
            if skip is None and not targets:
                await self._finish(delivery, "skipped", "no_operator")
                continue
            if skip is not None:
                await self._finish(delivery, "skipped", skip)
                continue
            outcomes = await asyncio.gather(*(self._send_one(delivery, r) for r in targets))
            status = "sent" if all(outcomes) else ("partially_sent" if any(outcomes) else "failed")
            await self._finish(delivery, status, None)

    async def _send_one(self, delivery: HumanInputDelivery, recipient: HumanInputRecipient) -> bool:
        assert self._mailer is not None
        config: dict[str, Any] = delivery.channel_payload or {}
        address = str(recipient.recipient_payload.get("email") or "")
        link = f"{self._base_url}/form/{recipient.access_token}"
        text, markup = bodies(str(config.get("body") or "A form is waiting for your answer."), link)
        subject = clean_subject(str(config.get("subject") or "A form is waiting for your answer"))
        for attempt in range(1, self._max_attempts + 1):
            try:
                await self._mailer.send(address, subject, text, markup)
            except MailError as exc:
                retry = exc.retryable and attempt < self._max_attempts
                await self._record(recipient.id, attempt, str(exc), "pending" if retry else "failed", None)
                if not retry:
                    return False
                await asyncio.sleep(self._delays[min(attempt - 1, len(self._delays) - 1)])
                continue
            await self._record(recipient.id, attempt, None, "sent", datetime.now(UTC).replace(tzinfo=None))
            return True
        return False

    async def _record(
        self, recipient_id: str, attempts: int, error: str | None, status: str, sent_at: datetime | None
    ) -> None:
        async with self._db() as session, session.begin():
            row = await session.get(HumanInputRecipient, recipient_id)
            if row is not None:
                row.send_attempts, row.last_error, row.send_status, row.sent_at = (
                    attempts,
                    error,
                    status,
                    sent_at,
                )
                session.add(row)

    async def _finish(self, delivery: HumanInputDelivery, status: str, reason: str | None) -> None:
        async with self._db() as session, session.begin():
            row = await session.get(HumanInputDelivery, delivery.id)
            if row is not None:
                row.send_status, row.skip_reason = status, reason
                session.add(row)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def aclose(self) -> None:
        await self.close()

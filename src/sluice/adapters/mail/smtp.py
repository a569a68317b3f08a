"""One message per call over SMTP: ``multipart/alternative`` (text + HTML), ``Auto-Submitted``.

Errors are classified for the caller's retry policy (human-input.md §9): connection problems and
4xx replies are ``retryable``; 5xx replies are not.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage

import aiosmtplib


class MailError(Exception):
    def __init__(self, message: str, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True, slots=True)
class SmtpMailer:
    host: str
    port: int = 25
    username: str | None = None
    password: str | None = None
    use_tls: bool = False
    start_tls: bool = False
    sender: str = "sluice@localhost"
    timeout: float = 30

    async def send(self, to: str, subject: str, text: str, html: str) -> None:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = to
        message["Subject"] = subject
        message["Auto-Submitted"] = "auto-generated"
        message.set_content(text)
        message.add_alternative(html, subtype="html")
        try:
            await aiosmtplib.send(
                message,
                hostname=self.host,
                port=self.port,
                username=self.username,
                password=self.password,
                use_tls=self.use_tls,
                start_tls=None if (self.start_tls and not self.use_tls) else False,
                timeout=self.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            code = exc.recipients[0].code if exc.recipients else 550
            raise MailError(str(exc), retryable=400 <= code < 500) from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise MailError(f"{exc.code} {exc.message}", retryable=400 <= exc.code < 500) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise MailError(str(exc) or type(exc).__name__, retryable=True) from exc

"""Outgoing mail over SMTP (aiosmtplib)."""

from sluice.adapters.mail.smtp import MailError, SmtpMailer

__all__ = ["MailError", "SmtpMailer"]

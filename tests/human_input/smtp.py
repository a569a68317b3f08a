"""A local SMTP server (aiosmtpd) that keeps messages in memory; optionally answers 451 first."""

from __future__ import annotations

import email
import time
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller

from tests.support.servers import free_port


@dataclass
class Captured:
    to: list[str]
    message: Message


@dataclass
class Handler:
    messages: list[Captured] = field(default_factory=list)
    fail_first: dict[str, str] = field(default_factory=dict)  # address → reply for its first attempt
    attempts: dict[str, int] = field(default_factory=dict)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        seen = self.attempts.get(address, 0) + 1
        self.attempts[address] = seen
        reply = self.fail_first.get(address)
        if reply and (seen == 1 or reply.startswith("5")):
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(Captured(list(envelope.rcpt_tos), email.message_from_bytes(envelope.content)))
        return "250 Message accepted"


class SmtpCapture:
    def __init__(self) -> None:
        self.handler = Handler()
        self.port = free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    def start(self) -> SmtpCapture:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def wait_for(self, count: int, timeout: float = 60) -> list[Captured]:
        deadline = time.monotonic() + timeout
        while len(self.handler.messages) < count and time.monotonic() < deadline:
            time.sleep(0.1)
        return list(self.handler.messages)

    def to(self, address: str) -> list[Captured]:
        return [m for m in self.handler.messages if address in m.to]


def parts(message: Message) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in message.walk():
        if part.get_content_maintype() == "text":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            out[part.get_content_subtype()] = payload.decode(part.get_content_charset() or "utf-8")
    return out

"""The real clock and id factory behind the engine's ports."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class UuidIds:
    def new(self, kind: str) -> str:
        return str(uuid.uuid4())


def utcnow() -> datetime:
    """Naive UTC, as stored in SQL."""
    return datetime.now(UTC).replace(tzinfo=None)

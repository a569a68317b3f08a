"""Reading a run's event log as SSE frames: replay from an offset, then follow until the end."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from sluice.runtime.ports import EventLog, LogEntry

PING = b"event: ping\n\n"
END_EVENTS = frozenset({"workflow_finished"})


def frame(entry: LogEntry, emit_id: bool = True) -> bytes:
    head = f"id: {entry.offset}\n".encode() if emit_id else b""
    return head + b"data: " + entry.payload + b"\n\n"


def prelude(retry_ms: int) -> bytes:
    return (f"retry: {retry_ms}\n".encode() if retry_ms else b"") + PING


class StreamService:
    def __init__(self, event_log: EventLog, ping_interval: float = 10, page_size: int = 500) -> None:
        self._log = event_log
        self._ping_interval = ping_interval
        self._page = page_size

    async def follow(self, run_id: str, after: str = "0-0") -> AsyncIterator[LogEntry | None]:
        """Entries after ``after`` until a terminal one; ``None`` whenever a ping is due."""
        waiter = self._log.waiter()
        cursor = after
        try:
            while True:
                entries = await self._log.read(run_id, cursor, self._page)
                for entry in entries:
                    cursor = entry.offset
                    yield entry
                    if entry.event in END_EVENTS:
                        return
                if len(entries) == self._page:
                    continue
                if not await waiter.wait({run_id: cursor}, self._ping_interval):
                    yield None
        finally:
            await waiter.close()

    async def wait_terminal(self, run_id: str, timeout: float) -> dict[str, Any] | None:
        """The run's ``workflow_finished`` payload, or ``None`` if it does not come in time."""

        async def consume() -> dict[str, Any] | None:
            async for entry in self.follow(run_id):
                if entry is not None and entry.event in END_EVENTS:
                    payload: dict[str, Any] = json.loads(entry.payload)
                    return payload
            return None

        try:
            return await asyncio.wait_for(consume(), timeout)
        except TimeoutError:
            return None

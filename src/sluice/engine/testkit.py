"""Deterministic ports for tests and benchmarks (§7): a virtual clock and sequential ids."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from datetime import UTC, datetime, timedelta


class VirtualClock:
    """Starts at 2025-01-01T00:00:00Z; sleeps resolve in deadline order once the loop is idle."""

    def __init__(self, start: datetime | None = None) -> None:
        self._start = start or datetime(2025, 1, 1, tzinfo=UTC)
        self._now = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._counter = itertools.count()
        self._driver: asyncio.Task[None] | None = None

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self._now)

    def monotonic(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        heapq.heappush(self._sleepers, (self._now + max(seconds, 0.0), next(self._counter), future))
        if self._driver is None or self._driver.done():
            self._driver = loop.create_task(self._drive())
        try:
            await future
        except asyncio.CancelledError:
            future.cancel()
            raise

    async def _drive(self) -> None:
        while self._sleepers:
            for _ in range(20):  # let every runnable task reach its next await
                await asyncio.sleep(0)
            while self._sleepers and self._sleepers[0][2].done():
                heapq.heappop(self._sleepers)
            if not self._sleepers:
                return
            deadline, _, future = heapq.heappop(self._sleepers)
            self._now = max(self._now, deadline)
            future.set_result(None)


class SeqIds:
    """``00000000-0000-4000-8000-<12-digit n>``."""

    def __init__(self) -> None:
        self._n = 0

    def new(self, kind: str) -> str:
        self._n += 1
        return f"00000000-0000-4000-8000-{self._n:012d}"

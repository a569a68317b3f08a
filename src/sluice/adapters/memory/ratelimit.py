"""In-process sliding windows for embedded mode (one process, so no sharing is needed)."""

from __future__ import annotations

import asyncio
from collections import deque

from sluice.services.ratelimit import Decision, retry_after


class MemoryRateLimiter:
    def __init__(self, max_keys: int = 100_000) -> None:
        self._hits: dict[tuple[str, str], deque[float]] = {}
        self._stamps: dict[tuple[str, str], tuple[float, float]] = {}
        self._max_keys = max_keys
        self._lock = asyncio.Lock()

    async def hit(self, name: str, key: str, limit: int, window: float, now: float) -> Decision:
        async with self._lock:
            hits = self._hits.setdefault((name, key), deque())
            while hits and hits[0] <= now - window:
                hits.popleft()
            if len(hits) >= limit:
                return Decision(False, retry_after(hits[0], window, now))
            hits.append(now)
            if len(self._hits) > self._max_keys:
                self._evict(now, window)
            return Decision(True)

    async def peek(self, name: str, key: str, limit: int, window: float, now: float) -> Decision:
        async with self._lock:
            hits = [t for t in self._hits.get((name, key), ()) if t > now - window]
            if len(hits) >= limit:
                return Decision(False, retry_after(hits[0], window, now))
            return Decision(True)

    async def swap(self, name: str, key: str, value: float, ttl: float) -> float | None:
        async with self._lock:
            previous = self._stamps.get((name, key))
            self._stamps[(name, key)] = (value, value + ttl)
            if len(self._stamps) > self._max_keys:
                self._stamps = {k: v for k, v in self._stamps.items() if v[1] > value}
            if previous is None or previous[1] <= value:
                return None
            return previous[0]

    def _evict(self, now: float, window: float) -> None:
        self._hits = {k: v for k, v in self._hits.items() if v and v[-1] > now - window}

    async def close(self) -> None:
        return None

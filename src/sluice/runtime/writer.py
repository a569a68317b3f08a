"""The per-try event writer (streaming spec §2.5).

``emit`` encodes and queues in emit order; one flusher appends everything queued as one batch
whenever it is idle, so batches grow only under load (no linger timer). A failing log is retried
with backoff; Redis errors never fail a node or a run. ``Fenced`` means a newer try owns the run:
the writer stops and tells its owner, which cancels the try.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable

from sluice.runtime.dify_events import Mapped, encode_bounded
from sluice.runtime.ports import EventLog, Fenced, NewEntry

log = logging.getLogger("sluice.runtime.writer")

BACKOFF_FIRST, BACKOFF_MAX = 0.05, 2.0


def to_entry(mapped: Mapped, max_bytes: int = 1 << 20) -> NewEntry:
    return NewEntry(mapped.event, encode_bounded(mapped.payload, max_bytes), mapped.key, mapped.node)


class RunEventWriter:
    def __init__(
        self,
        event_log: EventLog,
        run_id: str,
        fence: int,
        *,
        max_event_bytes: int = 1 << 20,
        batch_max_events: int = 256,
        batch_max_bytes: int = 1 << 20,
        buffer_max_events: int = 10_000,
        retry_max_seconds: float = 30,
        on_fenced: Callable[[], None] | None = None,
    ) -> None:
        self._log = event_log
        self.run_id = run_id
        self.fence = fence
        self._max_event_bytes = max_event_bytes
        self._batch_events = batch_max_events
        self._batch_bytes = batch_max_bytes
        self._buffer_max = buffer_max_events
        self._retry_max = retry_max_seconds
        self._on_fenced = on_fenced
        self._queue: deque[NewEntry] = deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._space = asyncio.Event()
        self._space.set()
        self._task: asyncio.Task[None] | None = None
        self.fenced = False
        self.dropped = 0
        self.appended = 0

    async def emit(self, mapped: Mapped) -> None:
        await self.emit_entry(to_entry(mapped, self._max_event_bytes))

    async def emit_entry(self, entry: NewEntry) -> None:
        if self.fenced:
            return
        while len(self._queue) >= self._buffer_max and not self.fenced:
            self._space.clear()
            await self._space.wait()
        self._queue.append(entry)
        self._idle.clear()
        self._wake.set()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._flusher(), name=f"writer:{self.run_id}")

    async def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything emitted so far is appended (or the writer is fenced)."""
        if not self._queue:
            return True
        try:
            async with asyncio.timeout(timeout):
                await self._idle.wait()
        except TimeoutError:
            return False
        return not self.fenced

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _take(self) -> list[NewEntry]:
        batch: list[NewEntry] = []
        size = 0
        for entry in self._queue:
            if batch and (len(batch) >= self._batch_events or size + len(entry.payload) > self._batch_bytes):
                break
            batch.append(entry)
            size += len(entry.payload)
        return batch

    async def _flusher(self) -> None:
        failing_since: float | None = None
        delay = BACKOFF_FIRST
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            batch = self._take()
            try:
                await self._log.append(self.run_id, batch, fence=self.fence)
            except Fenced:
                log.warning("run %s: fenced at %s; a newer try owns the run", self.run_id, self.fence)
                self.fenced = True
                self._queue.clear()
                self._space.set()
                self._idle.set()
                if self._on_fenced is not None:
                    self._on_fenced()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                now = loop.time()
                failing_since = failing_since if failing_since is not None else now
                if now - failing_since > self._retry_max:
                    self._drop_unkeyed()
                log.warning("run %s: append failed (%s); retrying in %.2fs", self.run_id, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX)
                continue
            failing_since, delay = None, BACKOFF_FIRST
            for _ in batch:
                self._queue.popleft()
            self.appended += len(batch)
            if len(self._queue) < self._buffer_max:
                self._space.set()

    def _drop_unkeyed(self) -> None:
        """A long outage: keyed (lifecycle) events stay buffered, chunks are dropped and counted."""
        kept = deque(e for e in self._queue if e.key is not None)
        self.dropped += len(self._queue) - len(kept)
        self._queue = kept
        self._space.set()

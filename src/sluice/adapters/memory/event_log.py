"""In-process event log and control bus for embedded mode (streaming spec §2.4, §7.2).

Same operations and offsets as the Redis log. No operation awaits between reading and writing state, so
each one is atomic with respect to other coroutines, like the Redis append script. A restart loses every
log and meta record: recovered runs start a new incarnation with ``prev = "?"``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from bisect import bisect_right
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sluice.runtime.ports import AppendResult, Fenced, LogBounds, LogEntry, NewEntry

Position = tuple[int, int]

_OFFSET = re.compile(r"^(\d+)-(\d+)$")
_TERMINAL_EVENT = "workflow_finished"
_ENTRY_OVERHEAD = 64  # rough bytes per entry besides payload and strings, for the memory budget


def parse_offset(offset: str) -> Position:
    """``"<ms>-<seq>"`` as an integer pair; anything else is a ``ValueError``."""
    match = _OFFSET.match(offset)
    if match is None:
        raise ValueError(f"invalid event log offset: {offset!r}")
    return int(match[1]), int(match[2])


def format_offset(position: Position) -> str:
    return f"{position[0]}-{position[1]}"


@dataclass(slots=True)
class _Log:
    """One incarnation of a run's log; ``positions`` parallels ``entries`` for bisection."""

    deadline: float
    entries: list[LogEntry] = field(default_factory=list)
    positions: list[Position] = field(default_factory=list)
    keys: dict[str, str] = field(default_factory=dict)
    size: int = 0
    appended_at: float = 0.0


@dataclass(slots=True)
class _Meta:
    """Outlives the log (``meta_ttl``): the last offset ever handed out and the fence."""

    deadline: float
    last: Position | None = None
    fence: int = 0


class MemoryEventLog:
    """``EventLog`` kept in this process.

    Expired logs and meta records are dropped when accessed and by a sweeper task (every
    ``sweep_interval_seconds``, started on first use; ``None`` disables it). With ``max_bytes`` set, an
    append that exceeds it drops expired logs, then finished ones (last event ``workflow_finished``), oldest
    first; live and paused logs are never dropped.
    """

    def __init__(
        self,
        retention_seconds: float = 600,
        meta_ttl_seconds: float = 604800,
        clock: Callable[[], float] = time.time,
        *,
        max_bytes: int | None = None,
        sweep_interval_seconds: float | None = 1.0,
    ) -> None:
        self._retention = retention_seconds
        self._meta_ttl = meta_ttl_seconds
        self._clock = clock
        self._max_bytes = max_bytes
        self._sweep_interval = sweep_interval_seconds
        self._logs: dict[str, _Log] = {}
        self._metas: dict[str, _Meta] = {}
        self._size = 0
        self._parked: dict[str, set[asyncio.Future[None]]] = {}
        self._waiters: set[MemoryLogWaiter] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self._closed = False

    # -- operations ---------------------------------------------------------------------------------

    async def append(
        self, run_id: str, entries: Sequence[NewEntry], fence: int = 0, run_start: bool = False
    ) -> list[AppendResult]:
        self._start_sweeper()
        now = self._clock()
        log, meta = self._current(run_id, now)
        stored = meta.fence if meta is not None else 0
        if fence < stored:
            raise Fenced(f"run {run_id}: fence {fence} is below the stored fence {stored}")
        prev: str | None = None
        if log is None:  # a new incarnation starts with the first entry written
            if run_start:
                prev = "0-0"
            elif meta is not None:
                prev = format_offset(meta.last) if meta.last is not None else "0-0"
            else:
                prev = "?"
        if fence > stored:
            meta = self._meta(run_id, meta, now)
            meta.fence = fence

        last = self._last(log, meta)
        results: list[AppendResult] = []
        written = False
        for new in entries:
            known = log.keys.get(new.key) if log is not None and new.key is not None else None
            if known is not None:
                results.append(AppendResult(known, True))
                continue
            position = _next_position(last, now)
            offset = format_offset(position)
            entry = LogEntry(offset, new.event, new.payload, new.key, new.node, prev)
            prev = None
            if log is None:
                log = self._logs[run_id] = _Log(deadline=now + self._retention)
            log.entries.append(entry)
            log.positions.append(position)
            if new.key is not None:
                log.keys[new.key] = offset
            size = _entry_size(entry)
            log.size += size
            self._size += size
            last = position
            written = True
            results.append(AppendResult(offset, False))

        if log is not None:
            log.deadline = now + self._retention
        if written:
            assert log is not None
            log.appended_at = now
            meta = self._meta(run_id, meta, now)
            meta.last = last
            self._wake(run_id)
            self._enforce_budget(now)
        if meta is not None:
            meta.deadline = now + self._meta_ttl
        return results

    async def read(self, run_id: str, after: str, limit: int) -> list[LogEntry]:
        start = parse_offset(after)
        log, _ = self._current(run_id, self._clock())
        if log is None or limit <= 0:
            return []
        index = bisect_right(log.positions, start)
        return log.entries[index : index + limit]

    async def bounds(self, run_id: str) -> LogBounds:
        log, meta = self._current(run_id, self._clock())
        last = self._last(log, meta)
        last_offset = format_offset(last) if last is not None else None
        if log is None or not log.entries:
            return LogBounds(exists=False, first=None, first_prev=None, last=last_offset)
        first = log.entries[0]
        return LogBounds(exists=True, first=first.offset, first_prev=first.prev, last=last_offset)

    async def touch(self, run_id: str) -> None:
        now = self._clock()
        log, meta = self._current(run_id, now)
        if log is not None:
            log.deadline = now + self._retention
        if meta is not None:
            meta.deadline = now + self._meta_ttl

    async def raise_fence(self, run_id: str, fence: int) -> None:
        now = self._clock()
        _, meta = self._current(run_id, now)
        if fence > (meta.fence if meta is not None else 0):
            meta = self._meta(run_id, meta, now)
            meta.fence = fence
        if meta is not None:
            meta.deadline = now + self._meta_ttl

    def waiter(self) -> MemoryLogWaiter:
        waiter = MemoryLogWaiter(self)
        self._waiters.add(waiter)
        return waiter

    async def close(self) -> None:
        self._closed = True
        for waiter in list(self._waiters):
            await waiter.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None

    def sweep(self) -> None:
        """Drop every expired log and meta record now (the sweeper calls this)."""
        now = self._clock()
        for run_id in [r for r, log in self._logs.items() if log.deadline <= now]:
            self._drop_log(run_id)
        for run_id in [r for r, meta in self._metas.items() if meta.deadline <= now]:
            del self._metas[run_id]

    # -- internals ----------------------------------------------------------------------------------

    def _current(self, run_id: str, now: float) -> tuple[_Log | None, _Meta | None]:
        """The run's live log and meta, dropping whichever has expired."""
        log = self._logs.get(run_id)
        if log is not None and log.deadline <= now:
            self._drop_log(run_id)
            log = None
        meta = self._metas.get(run_id)
        if meta is not None and meta.deadline <= now:
            del self._metas[run_id]
            meta = None
        return log, meta

    def _meta(self, run_id: str, meta: _Meta | None, now: float) -> _Meta:
        if meta is None:
            meta = self._metas[run_id] = _Meta(deadline=now + self._meta_ttl)
        return meta

    @staticmethod
    def _last(log: _Log | None, meta: _Meta | None) -> Position | None:
        """The last offset handed out: meta's, or the log's own if meta was lost."""
        candidates = []
        if meta is not None and meta.last is not None:
            candidates.append(meta.last)
        if log is not None and log.positions:
            candidates.append(log.positions[-1])
        return max(candidates, default=None)

    def _drop_log(self, run_id: str) -> None:
        log = self._logs.pop(run_id)
        self._size -= log.size

    def _enforce_budget(self, now: float) -> None:
        if self._max_bytes is None or self._size <= self._max_bytes:
            return
        self.sweep()
        finished = sorted(
            (log.appended_at, run_id)
            for run_id, log in self._logs.items()
            if log.entries and log.entries[-1].event == _TERMINAL_EVENT
        )
        for _, run_id in finished:
            if self._size <= self._max_bytes:
                break
            self._drop_log(run_id)

    def _newer(self, cursors: Mapping[str, str]) -> set[str]:
        """Runs in ``cursors`` whose log holds an entry after the given offset."""
        now = self._clock()
        ready: set[str] = set()
        for run_id, cursor in cursors.items():
            log, _ = self._current(run_id, now)
            if log is not None and log.positions and log.positions[-1] > parse_offset(cursor):
                ready.add(run_id)
        return ready

    def _park(self, future: asyncio.Future[None], run_ids: Iterable[str]) -> None:
        for run_id in run_ids:
            self._parked.setdefault(run_id, set()).add(future)

    def _unpark(self, future: asyncio.Future[None], run_ids: Iterable[str]) -> None:
        for run_id in run_ids:
            parked = self._parked.get(run_id)
            if parked is not None:
                parked.discard(future)
                if not parked:
                    del self._parked[run_id]

    def _wake(self, run_id: str) -> None:
        for future in self._parked.get(run_id, ()):
            if not future.done():
                future.set_result(None)

    def _forget(self, waiter: MemoryLogWaiter) -> None:
        self._waiters.discard(waiter)

    def _start_sweeper(self) -> None:
        if self._sweeper is None and self._sweep_interval is not None and not self._closed:
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep_loop(self._sweep_interval))

    async def _sweep_loop(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            self.sweep()


def _next_position(last: Position | None, now: float) -> Position:
    """``ms = max(now_ms, last.ms)``, ``seq`` = ``last.seq + 1`` in the same ms, else 0 (never ``0-0``)."""
    now_ms = int(now * 1000)
    if last is None:
        return (now_ms, 0) if now_ms > 0 else (0, 1)
    if now_ms > last[0]:
        return (now_ms, 0)
    return (last[0], last[1] + 1)


def _entry_size(entry: LogEntry) -> int:
    strings = (entry.offset, entry.event, entry.key or "", entry.node or "", entry.prev or "")
    return len(entry.payload) + sum(len(s) for s in strings) + _ENTRY_OVERHEAD


class MemoryLogWaiter:
    """Parks one future on every watched run; an append to any of them resolves it.

    ``interrupt()`` ends the current wait empty; issued while no wait runs, it ends the next one at once,
    so an interrupt is never lost.
    """

    def __init__(self, log: MemoryEventLog) -> None:
        self._log = log
        self._future: asyncio.Future[None] | None = None
        self._interrupted = False
        self._closed = False

    async def wait(self, cursors: Mapping[str, str], timeout: float) -> set[str]:
        if self._closed:
            raise RuntimeError("waiter is closed")
        if self._interrupted:
            self._interrupted = False
            return set()
        ready = self._log._newer(cursors)
        if ready or timeout <= 0:
            return ready
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        run_ids = list(cursors)
        self._future = future
        self._log._park(future, run_ids)
        try:
            async with asyncio.timeout(timeout):
                await future
        except TimeoutError:
            pass
        finally:
            self._future = None
            self._log._unpark(future, run_ids)
        if self._interrupted:
            self._interrupted = False
            return set()
        return self._log._newer(cursors)

    async def interrupt(self) -> None:
        self._interrupted = True
        if self._future is not None and not self._future.done():
            self._future.set_result(None)

    async def close(self) -> None:
        if not self._closed:
            await self.interrupt()
            self._closed = True
            self._log._forget(self)


class MemoryControlBus:
    """In-process fan-out: every subscriber has its own unbounded queue.

    Messages pass through JSON like on Redis, so subscribers get independent copies and a message that
    Redis could not carry fails here too.
    """

    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[dict[str, Any] | None]] = set()
        self._closed = False

    async def publish(self, message: Mapping[str, Any]) -> None:
        data = json.dumps(dict(message), separators=(",", ":"), ensure_ascii=False)
        for queue in self._queues:
            queue.put_nowait(json.loads(data))

    async def subscribe(self) -> AsyncIterator[dict[str, Any]]:
        """Registers on first iteration; unregisters when the iterator is closed or the bus is."""
        if self._closed:
            return
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._queues.add(queue)
        try:
            while (message := await queue.get()) is not None:
                yield message
        finally:
            self._queues.discard(queue)

    async def close(self) -> None:
        self._closed = True
        for queue in self._queues:
            queue.put_nowait(None)

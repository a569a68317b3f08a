"""The per-process stream hub (streaming spec §4): one reader per live run, shared by every client.

A ``RunChannel`` exists per run with local subscribers, created at the log's last offset. A fixed
set of reader tasks (``HUB_READERS``), each with one dedicated log waiter (one Redis connection
doing ``XREAD BLOCK`` over all its runs), pulls new entries, encodes each SSE frame once, advances
the channel cursor and puts the same bytes on every subscriber's bounded queue. The hub never
awaits a put: a subscriber whose queue is full is detached and told ``slow_consumer``, so nobody
else slows. Redis connections therefore grow with readers, not with clients (I8).

A 1 s ticker queues the shared ping for subscribers that have been silent for nearly the ping
interval, raises idle and lifetime alarms, and drops channels that lingered without subscribers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import zlib
from collections import deque
from dataclasses import dataclass, field

from sluice.runtime import offsets
from sluice.runtime.ports import EventLog, LogEntry, LogWaiter

log = logging.getLogger("sluice.runtime.hub")

PING = b"event: ping\n\n"


def control_frame(reason: str, last_event_id: str | None) -> bytes:
    body = {"event": "sluice_reconnect", "reason": reason, "last_event_id": last_event_id}
    return b"event: sluice_reconnect\ndata: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n"


def data_frame(offset: str | None, payload: bytes) -> bytes:
    if offset is None:
        return b"data: " + payload + b"\n\n"
    return b"id: " + offset.encode() + b"\ndata: " + payload + b"\n\n"


@dataclass(slots=True)
class Frame:
    """One queued frame: the SSE bytes plus what the consumer needs to decide on them (encoded and
    parsed once per entry, shared by every subscriber)."""

    offset: str | None
    event: str | None  # None for a ping
    key: str | None
    data: bytes
    payload: bytes | None = None
    pos: tuple[int, int] = (0, 0)


PING_FRAME = Frame(None, None, None, PING)


class Subscriber:
    """One client's bounded queue on a run channel."""

    __slots__ = (
        "alarm",
        "closed",
        "events",
        "last_data",
        "last_write",
        "max_bytes",
        "max_frames",
        "opened",
        "ping_pending",
        "queue",
        "reason",
        "run_id",
        "size",
        "waiter",
    )

    def __init__(
        self, run_id: str, max_frames: int, max_bytes: int, now: float, events: frozenset[str] | None
    ) -> None:
        self.run_id = run_id
        self.queue: deque[Frame] = deque()
        self.size = 0
        self.max_frames = max_frames
        self.max_bytes = max_bytes
        self.waiter: asyncio.Future[None] | None = None
        self.closed = False
        self.reason: str | None = None  # why the hub ended it: slow_consumer, resync, server_shutdown
        self.alarm: str | None = None  # idle_timeout or max_duration, for the consumer to act on
        self.events = events
        self.opened = self.last_write = self.last_data = now
        self.ping_pending = False

    def push(self, frame: Frame) -> bool:
        """Queue without waiting; ``False`` when the queue is full (the hub then detaches it)."""
        if self.closed:
            return True
        size = len(frame.data)
        if len(self.queue) >= self.max_frames or self.size + size > self.max_bytes:
            return False
        self.queue.append(frame)
        self.size += size
        self._wake()
        return True

    def take(self) -> list[Frame]:
        frames = list(self.queue)
        self.queue.clear()
        self.size = 0
        self.ping_pending = False
        return frames

    def wrote(self, now: float, data: bool) -> None:
        self.last_write = now
        if data:
            self.last_data = now

    def close(self, reason: str) -> None:
        if not self.closed:
            self.closed = True
            self.reason = reason
            self._wake()

    def raise_alarm(self, alarm: str) -> None:
        if self.alarm is None:
            self.alarm = alarm
            self._wake()

    async def wait(self) -> None:
        """Until a frame is queued, or the subscription is closed or alarmed."""
        if self.queue or self.closed or self.alarm:
            return
        self.waiter = asyncio.get_running_loop().create_future()
        try:
            await self.waiter
        finally:
            self.waiter = None

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


@dataclass(eq=False)
class RunChannel:
    run_id: str
    cursor: str
    fresh: bool  # created while neither log nor meta existed: the first entry is accepted as is
    reader: int
    subscribers: set[Subscriber] = field(default_factory=set)
    idle_since: float | None = None


class StreamHub:
    def __init__(
        self,
        event_log: EventLog,
        *,
        readers: int = 2,
        read_count: int = 500,
        block_ms: int = 1000,
        linger_seconds: float = 5,
        queue_max_frames: int = 1024,
        queue_max_bytes: int = 8 << 20,
        ping_interval: float = 10,
        idle_timeout: float = 300,
        max_connection_seconds: float = 0,
        emit_ids: bool = True,
        max_streams: int = 10_000,
        max_streams_per_run: int = 1000,
    ) -> None:
        self._log = event_log
        self._readers = readers
        self._read_count = read_count
        self._block = block_ms / 1000
        self._linger = linger_seconds
        self._queue_frames = queue_max_frames
        self._queue_bytes = queue_max_bytes
        self.ping_interval = ping_interval
        self._tick_period = min(1.0, ping_interval / 4)
        self._idle_timeout = idle_timeout
        self._max_connection = max_connection_seconds
        self.emit_ids = emit_ids
        self.max_streams = max_streams
        self.max_streams_per_run = max_streams_per_run
        self.channels: dict[str, RunChannel] = {}
        self._creating: dict[str, asyncio.Future[RunChannel]] = {}
        self._waiters: dict[int, LogWaiter] = {}
        self._poked: set[int] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._side_tasks: set[asyncio.Task[None]] = set()
        self.streams = 0
        self._streams_per_run: dict[str, int] = {}
        self.shutting_down = False
        self._closing = False
        self.dropped_slow = 0

    # -- life cycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        for index in range(self._readers):
            self._waiters[index] = self._log.waiter()
            self._tasks.append(loop.create_task(self._reader(index), name=f"hub-reader-{index}"))
        self._tasks.append(loop.create_task(self._ticker(), name="hub-ticker"))

    def shutdown(self) -> None:
        """API process going down: every stream ends with ``sluice_reconnect(server_shutdown)``."""
        self.shutting_down = True
        for channel in self.channels.values():
            for sub in channel.subscribers:
                sub.close("server_shutdown")

    async def close(self) -> None:
        self.shutdown()
        self._closing = True
        tasks = [*self._tasks, *self._side_tasks]
        for task in tasks:
            task.cancel()
        # bounded: on Python 3.11 redis-py's read timeouts can swallow a cancellation; the readers
        # also leave their loop at the next return because of ``_closing``
        if tasks:
            await asyncio.wait(tasks, timeout=self._block + 1)
        self._tasks.clear()
        for waiter in self._waiters.values():
            with contextlib.suppress(Exception):
                await waiter.close()
        self._waiters.clear()

    # -- admission (streams, subscribed or not) ---------------------------------------------------

    def admit(self, run_id: str) -> str | None:
        """Count a new SSE stream; the reason it may not open, else ``None``."""
        if self.shutting_down:
            return "server_shutdown"
        if self.streams >= self.max_streams:
            return "too_many_streams"
        if self._streams_per_run.get(run_id, 0) >= self.max_streams_per_run:
            return "too_many_streams_per_run"
        self.streams += 1
        self._streams_per_run[run_id] = self._streams_per_run.get(run_id, 0) + 1
        return None

    def release(self, run_id: str) -> None:
        self.streams -= 1
        left = self._streams_per_run.get(run_id, 1) - 1
        if left > 0:
            self._streams_per_run[run_id] = left
        else:
            self._streams_per_run.pop(run_id, None)

    # -- subscriptions ------------------------------------------------------------------------------

    async def subscribe(self, run_id: str, events: frozenset[str] | None = None) -> tuple[Subscriber, str]:
        """Attach to the run's channel; returns the subscriber and the channel cursor C. Everything
        later fans out above C (join protocol, §3.3 step 2: no await between attach and read)."""
        channel = self.channels.get(run_id)
        if channel is None:
            channel = await self._channel(run_id)
        loop = asyncio.get_running_loop()
        sub = Subscriber(run_id, self._queue_frames, self._queue_bytes, loop.time(), events)
        if self.shutting_down:
            sub.close("server_shutdown")
        channel.subscribers.add(sub)
        channel.idle_since = None
        return sub, channel.cursor

    def unsubscribe(self, sub: Subscriber) -> None:
        channel = self.channels.get(sub.run_id)
        if channel is None or sub not in channel.subscribers:
            return
        channel.subscribers.discard(sub)
        if not channel.subscribers:
            channel.idle_since = asyncio.get_running_loop().time()

    async def _channel(self, run_id: str) -> RunChannel:
        pending = self._creating.get(run_id)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[RunChannel] = asyncio.get_running_loop().create_future()
        self._creating[run_id] = future
        try:
            bounds = await self._log.bounds(run_id)
            reader = zlib.crc32(run_id.encode()) % self._readers
            channel = RunChannel(run_id, bounds.last or offsets.ZERO, bounds.last is None, reader)
            self.channels[run_id] = channel
            future.set_result(channel)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters get it raised, nobody else needs to
            raise
        finally:
            del self._creating[run_id]
        self._poke(channel.reader)
        return channel

    def _poke(self, reader: int) -> None:
        """The reader's set of runs changed: end its current wait (a missed poke delays ≤ BLOCK)."""
        if reader in self._poked or reader not in self._waiters:
            return
        self._poked.add(reader)
        task = asyncio.get_running_loop().create_task(self._interrupt(reader))
        self._side_tasks.add(task)
        task.add_done_callback(self._side_tasks.discard)

    async def _interrupt(self, reader: int) -> None:
        try:
            await self._waiters[reader].interrupt()
        except Exception as exc:
            log.warning("hub reader %s: interrupt failed (%s)", reader, exc)
        finally:
            self._poked.discard(reader)

    # -- readers ------------------------------------------------------------------------------------

    async def _reader(self, index: int) -> None:
        waiter = self._waiters[index]
        while not self._closing:
            cursors = {r: c.cursor for r, c in self.channels.items() if c.reader == index}
            try:
                ready = await waiter.wait(cursors, self._block)
                for run_id in ready:
                    await self._pump(run_id)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("hub reader %s: event log read failed (%r); retrying", index, exc)
                await asyncio.sleep(0.5)

    async def _pump(self, run_id: str) -> None:
        channel = self.channels.get(run_id)
        while channel is not None and self.channels.get(run_id) is channel:
            entries = await self._log.read(run_id, channel.cursor, self._read_count)
            if not entries or self.channels.get(run_id) is not channel:
                return
            self.fan_out(channel, entries)
            if len(entries) < self._read_count:
                return
            await asyncio.sleep(0)  # a backlog: let subscribers drain between pages

    def fan_out(self, channel: RunChannel, entries: list[LogEntry]) -> None:
        """``entries`` come from a read after the channel cursor, so they are all above it."""
        for entry in entries:
            if (
                entry.prev is not None
                and not channel.fresh
                and not offsets.continuous(entry.prev, channel.cursor)
            ):
                log.warning("run %s: gap before %s; subscribers resync", channel.run_id, entry.offset)
                for sub in channel.subscribers:
                    sub.close("resync")
                channel.subscribers.clear()
            channel.fresh = False
            channel.cursor = entry.offset
            if not channel.subscribers:
                continue
            data = data_frame(entry.offset if self.emit_ids else None, entry.payload)
            position = offsets.pos(entry.offset)
            frame = Frame(entry.offset, entry.event, entry.key, data, entry.payload, position)
            slow: list[Subscriber] = []
            for sub in channel.subscribers:
                if (sub.events is None or entry.event in sub.events) and not sub.push(frame):
                    slow.append(sub)
            for sub in slow:
                channel.subscribers.discard(sub)
                sub.close("slow_consumer")
                self.dropped_slow += 1
                log.warning(
                    "run %s: dropped a slow consumer (queue full at %s)", channel.run_id, entry.offset
                )

    # -- ticker -------------------------------------------------------------------------------------

    async def _ticker(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._tick_period)
            now = loop.time()
            ping_after = self.ping_interval - self._tick_period
            for run_id, channel in list(self.channels.items()):
                if not channel.subscribers:
                    if channel.idle_since is not None and now - channel.idle_since >= self._linger:
                        del self.channels[run_id]
                        self._poke(channel.reader)
                    continue
                for sub in channel.subscribers:
                    if sub.events is None and not sub.ping_pending and now - sub.last_write >= ping_after:
                        sub.ping_pending = sub.push(PING_FRAME)
                    if self._idle_timeout and now - sub.last_data >= self._idle_timeout:
                        sub.raise_alarm("idle_timeout")
                    if self._max_connection and now - sub.opened >= self._max_connection:
                        sub.raise_alarm("max_duration")

"""The stream hub and the join protocol against the real event logs (memory and Redis).

A synthetic writer appends straight to the log (as a try's writer does); clients are
``RunStream``s of the real ``StreamService``, read the way the SSE response reads them.
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import async_sessionmaker

from sluice.adapters.memory.event_log import MemoryEventLog
from sluice.adapters.redis.event_log import RedisEventLog
from sluice.adapters.sql.db import create_engine, session_factory
from sluice.runtime.hub import StreamHub
from sluice.runtime.ports import EventLog, NewEntry
from sluice.services.streams import RunStream, StreamService
from tests.streaming.support import Frame, SSEParser, data_frames
from tests.support.services import unique_name


@pytest.fixture(params=["memory", "redis"])
async def event_log(request: pytest.FixtureRequest) -> AsyncIterator[EventLog]:
    if request.param == "memory":
        log = MemoryEventLog()
        yield log
        await log.close()
        return
    url = request.getfixturevalue("redis_server_url")
    client = aioredis.Redis.from_url(url)
    prefix = unique_name("hub")
    rlog = RedisEventLog(client, url, prefix=prefix, block_ms=200)
    yield rlog
    await rlog.close()
    keys = [k async for k in client.scan_iter(match=f"{prefix}:*", count=1000)]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[async_sessionmaker[Any]]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}")
    yield session_factory(engine)
    await engine.dispose()


async def make_hub(log: EventLog, **kw: Any) -> StreamHub:
    hub = StreamHub(log, readers=2, block_ms=200, **kw)
    await hub.start()
    return hub


def event(n: int, name: str = "text_chunk") -> NewEntry:
    body = {"event": name, "task_id": "t", "workflow_run_id": "r", "data": {"n": n}}
    key = "wf" if name == "workflow_finished" else None
    return NewEntry(name, json.dumps(body).encode(), key)


async def write(log: EventLog, run: str, total: int, per_ms: int = 5) -> list[str]:
    """About ``per_ms`` × 1000 events/s, then ``workflow_finished``; returns every offset."""
    offsets: list[str] = []
    n = 0
    while n < total:
        batch = [event(i) for i in range(n, min(n + per_ms, total))]
        offsets += [r.offset for r in await log.append(run, batch, run_start=n == 0)]
        n += len(batch)
        await asyncio.sleep(0.001)
    offsets += [r.offset for r in await log.append(run, [event(total, "workflow_finished")])]
    return offsets


async def eventually(predicate: Callable[[], bool], timeout: float = 30) -> None:
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


async def consume(stream: RunStream, stop_after: int | None = None) -> list[Frame]:
    parser = SSEParser()
    frames: list[Frame] = []
    async for chunk in stream.chunks():
        frames += parser.feed(chunk)
        if stop_after is not None and len(data_frames(frames)) >= stop_after:
            stream.abort()
    return frames


async def test_hand_over_race_is_contiguous(event_log: EventLog, db: Any) -> None:
    """Scenario 6: a writer at ~5000 events/s; 50 clients join at random offsets; each gets every
    later entry exactly once, in order, through the terminal."""
    hub = await make_hub(event_log)
    service = StreamService(db, event_log, hub, ping_interval=5)
    run = str(uuid.uuid4())
    rng = random.Random(6)
    writer = asyncio.create_task(write(event_log, run, 3000))
    seen: list[str] = []
    clients: list[tuple[str, asyncio.Task[list[Frame]]]] = []
    while not writer.done() and len(clients) < 50:
        await asyncio.sleep(rng.uniform(0.001, 0.012))
        entries = await event_log.read(run, "0-0", 5000)
        seen = [e.offset for e in entries]
        start = rng.choice(["0-0", *seen]) if seen else "0-0"
        stream = service.open(run, "t", after=None if start == "0-0" else start)
        clients.append((start, asyncio.create_task(consume(stream))))
    offsets = await writer
    assert len(clients) == 50
    for start, task in clients:
        frames = data_frames(await task)
        got = [f.id for f in frames]
        expected = offsets if start == "0-0" else offsets[offsets.index(start) + 1 :]
        assert got == expected, f"client from {start}: {len(got)} frames, expected {len(expected)}"
        assert frames[-1].data["event"] == "workflow_finished"
    await hub.close()
    assert hub.streams == 0


async def test_many_clients_share_one_reader(event_log: EventLog, db: Any) -> None:
    """Scenario 25 (service level): 100 subscribers of one run, identical sequences; the hub holds
    one channel for them all."""
    hub = await make_hub(event_log)
    service = StreamService(db, event_log, hub, ping_interval=5)
    run = str(uuid.uuid4())
    await event_log.append(run, [event(-1, "workflow_started")], run_start=True)
    tasks = [asyncio.create_task(consume(service.open(run, "t"))) for _ in range(100)]
    await eventually(lambda: run in hub.channels and len(hub.channels[run].subscribers) == 100)
    assert len(hub.channels) == 1
    offsets = await write(event_log, run, 1500, per_ms=20)
    results = [[f.id for f in data_frames(await t)] for t in tasks]
    assert all(r == results[0] for r in results)
    assert results[0][1:] == offsets  # after the workflow_started written before
    await hub.close()


async def test_slow_consumer_is_dropped_without_slowing_others(event_log: EventLog, db: Any) -> None:
    """Scenario 26 (service level): a subscriber that stops draining overflows its bounded queue
    and is told ``slow_consumer`` with its last delivered offset; the others get everything."""
    hub = await make_hub(event_log, queue_max_frames=64, read_count=16)
    service = StreamService(db, event_log, hub, ping_interval=5)
    run = str(uuid.uuid4())
    await event_log.append(run, [event(-1, "workflow_started")], run_start=True)
    fast = [asyncio.create_task(consume(service.open(run, "t"))) for _ in range(3)]
    slow_stream = service.open(run, "t")
    slow_chunks = slow_stream.chunks()
    parser = SSEParser()
    parser.feed(await anext(slow_chunks))  # prelude
    while not data_frames(parser.frames):
        parser.feed(await anext(slow_chunks))
    pending = asyncio.ensure_future(anext(slow_chunks))  # runs up to its subscription, then waits
    await eventually(lambda: slow_stream.sub is not None)
    offsets = await write(event_log, run, 2000, per_ms=20)  # it reads one chunk, then nothing
    parser.feed(await pending)
    for task in fast:
        assert [f.id for f in data_frames(await task)][1:] == offsets
    rest = [chunk async for chunk in slow_chunks]
    frames = [*parser.frames]
    for chunk in rest:
        frames += parser.feed(chunk)
    control = [f for f in frames if f.event == "sluice_reconnect"]
    assert len(control) == 1 and control[0].data["reason"] == "slow_consumer"
    last = control[0].data["last_event_id"]
    assert last == data_frames(frames)[-1].id
    assert hub.dropped_slow == 1
    # the dropped client resumes at its own pace and loses nothing
    resumed = data_frames(await consume(service.open(run, "t", after=last)))
    all_ids = [f.id for f in data_frames(frames)] + [f.id for f in resumed]
    entries = await event_log.read(run, "0-0", 10_000)
    assert all_ids == [e.offset for e in entries]
    await hub.close()


async def test_idle_subscribers_get_pings_and_shutdown_frames(event_log: EventLog, db: Any) -> None:
    """Pings every interval on a silent stream (none logged), then ``server_shutdown`` with the last
    offset when the process goes down."""
    hub = await make_hub(event_log, ping_interval=0.4)
    service = StreamService(db, event_log, hub, ping_interval=0.4)
    run = str(uuid.uuid4())
    first = (await event_log.append(run, [event(0, "workflow_started")], run_start=True))[0].offset
    stream = service.open(run, "t")
    loop = asyncio.get_running_loop()
    stamps: list[tuple[float, Frame]] = []
    parser = SSEParser()

    async def read() -> None:
        async for chunk in stream.chunks():
            for frame in parser.feed(chunk):
                stamps.append((loop.time(), frame))

    reader = asyncio.create_task(read())
    await asyncio.sleep(2.2)
    hub.shutdown()
    await asyncio.wait_for(reader, 2)
    assert stamps[1][1].data["event"] == "workflow_started"
    silent = [f for _, f in stamps[2:-1]]  # gaps are measured by bench/stream_load.py
    assert len(silent) >= 2 and all(f.event == "ping" and f.raw == b"event: ping" for f in silent)
    assert stamps[-1][1].event == "sluice_reconnect"
    assert stamps[-1][1].data == {
        "event": "sluice_reconnect",
        "reason": "server_shutdown",
        "last_event_id": first,
    }
    assert [e.event for e in await event_log.read(run, "0-0", 100)] == ["workflow_started"]
    await hub.close()

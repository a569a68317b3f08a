"""Contract suite for ``EventLog`` and ``ControlBus`` (streaming spec §2.6), run on memory and Redis.

The numbered tests follow the spec's items (1)-(10). Redis tests need a server (``TEST_REDIS_URL``, default
127.0.0.1:6379): they skip without one, and fail instead when ``SLUICE_TEST_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from sluice.adapters.memory.event_log import MemoryControlBus, MemoryEventLog, parse_offset
from sluice.adapters.redis.event_log import RedisControlBus, RedisEventLog, _Script
from sluice.runtime.ports import AppendResult, ControlBus, EventLog, Fenced, LogEntry, NewEntry
from tests.support.services import unique_name

OFFSET = re.compile(r"^\d+-\d+$")
FAR_FUTURE = "9999999999999-7"  # a meta.last far ahead of any clock (year 2286)


def pos(offset: str) -> tuple[int, int]:
    return parse_offset(offset)


def entry(n: int | str, **kw: Any) -> NewEntry:
    return NewEntry(kw.pop("event", "text_chunk"), str(n).encode(), **kw)


async def read_all(log: EventLog, run: str, after: str = "0-0", page: int = 5000) -> list[LogEntry]:
    out: list[LogEntry] = []
    while batch := await log.read(run, after, page):
        out += batch
        after = batch[-1].offset
    return out


# -- backends ----------------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


class MemoryHarness:
    """Memory backend: time is a fake clock; expiry and meta edits reach into the log's state."""

    def __init__(self) -> None:
        self.clock = FakeClock()
        self.logs: list[MemoryEventLog] = []

    def log(self, retention_seconds: float = 600, block_ms: int = 1000) -> MemoryEventLog:
        log = MemoryEventLog(retention_seconds, clock=self.clock, sweep_interval_seconds=None)
        self.logs.append(log)
        return log

    async def elapse(self, seconds: float) -> None:
        self.clock.now += seconds

    async def expire(self, log: Any, run: str) -> None:
        if run in log._logs:
            log._drop_log(run)

    async def delete_meta(self, log: Any, run: str) -> None:
        log._metas.pop(run, None)

    async def set_meta_last(self, log: Any, run: str, offset: str) -> None:
        log._metas[run].last = parse_offset(offset)

    def bus(self) -> ControlBus:
        return MemoryControlBus()

    async def cleanup(self) -> None:
        for log in self.logs:
            await log.close()


class RedisHarness:
    """Redis backend: real time; expiry is simulated by deleting the log and keys hashes."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.prefix = unique_name("t")
        self.client = aioredis.Redis.from_url(url)
        self.logs: list[RedisEventLog] = []

    def log(self, retention_seconds: float = 600, block_ms: int = 1000) -> RedisEventLog:
        log = RedisEventLog(
            self.client, self.url, self.prefix, retention_seconds=int(retention_seconds), block_ms=block_ms
        )
        self.logs.append(log)
        return log

    async def elapse(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def expire(self, log: Any, run: str) -> None:
        await self.client.delete(log.log_key(run), log.keys_key(run))

    async def delete_meta(self, log: Any, run: str) -> None:
        await self.client.delete(log.meta_key(run))

    async def set_meta_last(self, log: Any, run: str, offset: str) -> None:
        await self.client.hset(log.meta_key(run), "last", offset)

    def bus(self) -> ControlBus:
        return RedisControlBus(self.client, self.prefix)

    async def cleanup(self) -> None:
        for log in self.logs:
            await log.close()
        keys = [key async for key in self.client.scan_iter(match=f"{self.prefix}:*", count=1000)]
        if keys:
            await self.client.delete(*keys)
        await self.client.aclose()


Harness = MemoryHarness | RedisHarness


@pytest.fixture(params=["memory", "redis"])
async def h(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    harness: Harness
    if request.param == "memory":
        harness = MemoryHarness()
    else:
        harness = RedisHarness(request.getfixturevalue("redis_server_url"))
    try:
        yield harness
    finally:
        await harness.cleanup()


# -- (1) offsets ---------------------------------------------------------------------------------------


async def test_1_offsets_are_stream_ids_and_strictly_increase(h: Harness) -> None:
    log = h.log()
    offsets: list[str] = []
    for i in range(30):
        results = await log.append("run", [entry(i), entry(i), entry(i)])
        offsets += [r.offset for r in results]
        if i % 10 == 0:
            await h.elapse(0.002)
    assert all(OFFSET.match(o) for o in offsets)
    assert all(pos(a) < pos(b) for a, b in itertools.pairwise(offsets))
    assert [e.offset for e in await read_all(log, "run")] == offsets


# -- (2) read ----------------------------------------------------------------------------------------------


async def test_2_read_is_strictly_after_ordered_and_limited(h: Harness) -> None:
    log = h.log()
    first = [r.offset for r in await log.append("run", [entry(i) for i in range(5)])]
    await h.elapse(0.01)
    second = [r.offset for r in await log.append("run", [entry(i) for i in range(5, 10)])]
    offsets = first + second

    everything = await log.read("run", "0-0", 100)
    assert [e.offset for e in everything] == offsets
    assert [e.payload for e in everything] == [str(i).encode() for i in range(10)]
    assert [e.offset for e in await log.read("run", offsets[3], 2)] == offsets[4:6]
    assert [e.offset for e in await log.read("run", offsets[3], 100)] == offsets[4:]
    assert await log.read("run", offsets[-1], 10) == []
    assert await log.read("run", "0-0", 0) == []

    ms, seq = pos(first[-1])
    between = f"{ms}-{seq + 1000}"  # above the first batch, below the second (which starts ≥ 10 ms later)
    assert pos(first[-1]) < pos(between) < pos(second[0])
    assert [e.offset for e in await log.read("run", between, 100)] == second
    assert await log.read("unknown-run", "0-0", 10) == []
    with pytest.raises(ValueError):
        await log.read("run", "not-an-offset", 10)


# -- (3) concurrent writers ----------------------------------------------------------------------------


async def test_3_batches_stay_contiguous_beside_a_concurrent_writer(h: Harness) -> None:
    log = h.log()
    total = 10_000

    async def writer(w: int) -> list[list[str]]:
        batches: list[list[str]] = []
        sizes = itertools.cycle([1, 13, 250, 37, 100])
        i = 0
        while i < total:
            n = min(next(sizes), total - i)
            results = await log.append("run", [entry(f"{w}:{j}") for j in range(i, i + n)])
            batches.append([r.offset for r in results])
            i += n
        return batches

    started = time.monotonic()
    per_writer = await asyncio.gather(writer(0), writer(1))
    entries = await read_all(log, "run")
    assert time.monotonic() - started < 30

    assert len(entries) == 2 * total
    assert all(pos(a.offset) < pos(b.offset) for a, b in itertools.pairwise(entries))
    for w in (0, 1):
        mine = [int(e.payload.split(b":")[1]) for e in entries if e.payload.startswith(f"{w}:".encode())]
        assert mine == list(range(total))
    index = {e.offset: i for i, e in enumerate(entries)}
    for batches in per_writer:
        for batch in batches:
            positions = [index[o] for o in batch]
            assert positions == list(range(positions[0], positions[0] + len(batch)))


# -- (4) dedupe --------------------------------------------------------------------------------------------


async def test_4_a_repeated_key_is_a_duplicate_with_the_first_offset(h: Harness) -> None:
    log = h.log()
    first = await log.append(
        "run", [entry("a", event="node_started", key="ns:1", node="ne1"), entry("chunk"), entry("chunk")]
    )
    again = await log.append(
        "run",
        [
            entry("a2", event="node_started", key="ns:1", node="ne1"),
            entry("b", event="node_finished", key="nf:1", node="ne1"),
            entry("b2", event="node_finished", key="nf:1", node="ne1"),  # repeated within the batch
        ],
    )
    assert again[0] == AppendResult(first[0].offset, True)
    assert not again[1].duplicate and pos(again[1].offset) > pos(first[-1].offset)
    assert again[2] == AppendResult(again[1].offset, True)

    wf1 = await log.append("run", [entry("end", event="workflow_finished", key="wf")])
    wf2 = await log.append("run", [entry("end", event="workflow_finished", key="wf")])
    assert wf2 == [AppendResult(wf1[0].offset, True)]

    entries = await read_all(log, "run")
    assert [e.payload for e in entries] == [b"a", b"chunk", b"chunk", b"b", b"end"]
    assert [e.event for e in entries].count("workflow_finished") == 1
    assert (entries[0].key, entries[0].node) == ("ns:1", "ne1")
    assert (entries[1].key, entries[1].node) == (None, None)


# -- (5) fence ---------------------------------------------------------------------------------------------


async def test_5_a_lower_fence_is_fenced_and_writes_nothing(h: Harness) -> None:
    log = h.log()
    await log.append("run", [entry(1)], fence=2)
    with pytest.raises(Fenced):
        await log.append("run", [entry(2, key="k2")], fence=1)
    assert [e.payload for e in await read_all(log, "run")] == [b"1"]

    await log.raise_fence("run", 5)
    await log.raise_fence("run", 3)  # never lowers
    with pytest.raises(Fenced):
        await log.append("run", [entry(3)], fence=4)
    ok = await log.append("run", [entry(4, key="k2")], fence=5)
    assert ok[0].duplicate is False  # the fenced batch recorded no key
    await log.append("run", [entry(5)], fence=7)
    with pytest.raises(Fenced):
        await log.append("run", [entry(6)], fence=5)
    assert [e.payload for e in await read_all(log, "run")] == [b"1", b"4", b"5"]

    await log.raise_fence("fresh", 3)  # before any append
    with pytest.raises(Fenced):
        await log.append("fresh", [entry(1)])
    assert await log.read("fresh", "0-0", 10) == []
    assert (await log.bounds("fresh")).exists is False


# -- (6) retention -----------------------------------------------------------------------------------------


async def test_6_retention_expires_the_log_and_touch_keeps_it(h: Harness) -> None:
    log = h.log(retention_seconds=1)
    results = await log.append("run", [entry(1, key="k"), entry(2)])
    await h.elapse(0.6)
    await log.touch("run")
    await h.elapse(0.6)  # 1.2 s after the append, 0.6 s after the touch
    assert len(await log.read("run", "0-0", 10)) == 2
    await h.elapse(1.1)
    bounds = await log.bounds("run")
    assert (bounds.exists, bounds.first, bounds.last) == (False, None, results[-1].offset)
    assert await log.read("run", "0-0", 10) == []
    # the key map expired with the log: the key is new again
    assert (await log.append("run", [entry(1, key="k")]))[0].duplicate is False


async def test_6_live_entries_are_never_trimmed(h: Harness) -> None:
    log = h.log()
    total, batch = 100_000, 2_000
    first = None
    for _ in range(total // batch):
        results = await log.append("run", [NewEntry("text_chunk", b"x")] * batch)
        first = first or results[0].offset
    bounds = await log.bounds("run")
    assert bounds.exists and bounds.first == first
    entries = await read_all(log, "run", page=20_000)
    assert len(entries) == total and entries[0].offset == first


# -- (7) incarnations --------------------------------------------------------------------------------------


async def test_7_after_expiry_prev_is_the_previous_last_and_offsets_grow(h: Harness) -> None:
    log = h.log()
    last = (await log.append("run", [entry(1), entry(2)], run_start=True))[-1].offset
    await h.expire(log, "run")
    assert (await log.bounds("run")).exists is False

    second = await log.append("run", [entry(3), entry(4)])
    entries = await read_all(log, "run")
    assert [e.prev for e in entries] == [last, None]
    assert pos(second[0].offset) > pos(last)
    assert (await log.bounds("run")).first_prev == last

    # meta.last ahead of the clock (the clock went back, or another host's clock is ahead)
    await h.set_meta_last(log, "run", FAR_FUTURE)
    await h.expire(log, "run")
    third = await log.append("run", [entry(5), entry(6)])
    assert pos(FAR_FUTURE) < pos(third[0].offset) < pos(third[1].offset)
    assert (await read_all(log, "run"))[0].prev == FAR_FUTURE
    fourth = await log.append("run", [entry(7)])
    assert pos(fourth[0].offset) > pos(third[1].offset)
    assert (await log.bounds("run")).last == fourth[0].offset


# -- (8) run_start, lost meta, bounds --------------------------------------------------------------------


async def test_8_prev_on_run_start_lost_meta_and_bounds_after_expiry(h: Harness) -> None:
    log = h.log()
    assert await log.bounds("run") == await log.bounds("never-written")
    assert (await log.bounds("run")).exists is False and (await log.bounds("run")).last is None

    results = await log.append("run", [entry(1), entry(2)], run_start=True)
    await log.append("run", [entry(3)])
    entries = await read_all(log, "run")
    assert [e.prev for e in entries] == ["0-0", None, None]
    bounds = await log.bounds("run")
    assert (bounds.exists, bounds.first, bounds.first_prev) == (True, results[0].offset, "0-0")
    assert bounds.last == entries[-1].offset

    await h.expire(log, "run")
    bounds = await log.bounds("run")
    assert (bounds.exists, bounds.first, bounds.first_prev, bounds.last) == (
        False,
        None,
        None,
        entries[-1].offset,
    )

    await h.delete_meta(log, "run")
    await log.append("run", [entry(4)])
    assert (await read_all(log, "run"))[0].prev == "?"
    assert (await log.bounds("run")).first_prev == "?"

    await log.append("recovered", [entry(1)])  # neither log nor meta, and not a run start
    assert (await log.read("recovered", "0-0", 1))[0].prev == "?"

    await log.raise_fence("fenced-first", 1)  # meta without a last offset: still the first append
    await log.append("fenced-first", [entry(1)], fence=1)
    assert (await log.read("fenced-first", "0-0", 1))[0].prev == "0-0"


# -- (9) wait / interrupt ----------------------------------------------------------------------------------


async def _woken_within(task: asyncio.Task[set[str]], started: float) -> tuple[set[str], float]:
    result = await asyncio.wait_for(task, 2)
    return result, time.monotonic() - started


async def test_9_wait_returns_soon_after_an_append_and_on_interrupt(h: Harness) -> None:
    log = h.log(block_ms=200)  # Redis: waits longer than BLOCK loop
    waiter = log.waiter()
    other = log.waiter()
    a = (await log.append("a", [entry(1)]))[0].offset
    try:
        assert await waiter.wait({"a": "0-0"}, 5) == {"a"}  # already newer: at once
        assert await waiter.wait({"a": a}, 0) == set()

        # a run created after the wait started
        task = asyncio.create_task(waiter.wait({"a": a, "b": "0-0"}, 5))
        second = asyncio.create_task(other.wait({"b": "0-0"}, 5))
        await asyncio.sleep(0.1)
        assert not task.done()
        started = time.monotonic()
        b = (await log.append("b", [entry(1)]))[0].offset
        result, elapsed = await _woken_within(task, started)
        assert result == {"b"} and elapsed <= 0.05, elapsed
        assert await asyncio.wait_for(second, 1) == {"b"}

        # an append after several BLOCK periods
        task = asyncio.create_task(waiter.wait({"a": a, "b": b}, 5))
        await asyncio.sleep(0.45)
        started = time.monotonic()
        await log.append("a", [entry(2)])
        result, elapsed = await _woken_within(task, started)
        assert result == {"a"} and elapsed <= 0.05, elapsed
        a = (await log.bounds("a")).last or ""

        # timeout
        started = time.monotonic()
        assert await waiter.wait({"a": a, "b": b}, 0.3) == set()
        assert 0.25 <= time.monotonic() - started < 1.5

        # interrupt
        task = asyncio.create_task(waiter.wait({"a": a, "b": b}, 5))
        await asyncio.sleep(0.1)
        started = time.monotonic()
        await waiter.interrupt()
        result, elapsed = await _woken_within(task, started)
        assert result == set() and elapsed <= 0.05, elapsed

        # an interrupt while no wait runs ends the next wait at once; the one after waits again
        await waiter.interrupt()
        started = time.monotonic()
        assert await waiter.wait({"a": a}, 5) == set()
        assert time.monotonic() - started <= 0.05
        assert await waiter.wait({"a": a}, 0.1) == set()
        assert time.monotonic() - started >= 0.09

        # no cursors: only the timeout or an interrupt ends the wait
        task = asyncio.create_task(waiter.wait({}, 5))
        await asyncio.sleep(0.05)
        await waiter.interrupt()
        assert await asyncio.wait_for(task, 1) == set()
    finally:
        await waiter.close()
        await other.close()


async def test_9_an_interrupt_is_never_lost_and_a_cancelled_wait_leaves_the_waiter_usable(h: Harness) -> None:
    log = h.log()
    last = (await log.append("run", [entry(1)]))[0].offset
    waiter = log.waiter()
    try:
        for i in range(40):  # interrupt at varying points: before, while and after the wait starts
            task = asyncio.create_task(waiter.wait({"run": last}, 5))
            await asyncio.sleep((i % 8) * 0.001)
            started = time.monotonic()
            await waiter.interrupt()
            assert await asyncio.wait_for(task, 0.5) == set()
            assert time.monotonic() - started <= 0.05
        task = asyncio.create_task(waiter.wait({"run": last}, 5))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        task = asyncio.create_task(waiter.wait({"run": last}, 5))
        await asyncio.sleep(0.05)
        last = (await log.append("run", [entry(2)]))[0].offset
        assert await asyncio.wait_for(task, 0.5) == {"run"}
        task = asyncio.create_task(waiter.wait({"run": last}, 5))  # interrupt works after reconnecting
        await asyncio.sleep(0.05)
        started = time.monotonic()
        await waiter.interrupt()
        assert await asyncio.wait_for(task, 0.5) == set()
        assert time.monotonic() - started <= 0.05
    finally:
        await waiter.close()


# -- (10) payloads -----------------------------------------------------------------------------------------


async def test_10_payloads_round_trip_byte_exact(h: Harness) -> None:
    log = h.log()
    payloads = [
        '{"answer":"héllo wörld ✓ 中文 🚀"}'.encode(),
        bytes(range(256)),
        b"",
        b"\r\n\x00\xff",
        os.urandom(1 << 20),
    ]
    news = [NewEntry("text_chunk", p, key=f"ключ:{i}", node="nœud-✓") for i, p in enumerate(payloads)]
    await log.append("run", news)
    entries = await read_all(log, "run")
    assert [e.payload for e in entries] == payloads
    assert [e.key for e in entries] == [n.key for n in news]
    assert {e.node for e in entries} == {"nœud-✓"}


# -- control bus -------------------------------------------------------------------------------------------


async def test_control_bus_delivers_to_every_subscriber_in_order(h: Harness) -> None:
    bus = h.bus()
    subscriptions = [bus.subscribe() for _ in range(3)]
    received: list[list[dict[str, Any]]] = [[] for _ in subscriptions]

    async def consume(i: int) -> None:
        async for message in subscriptions[i]:
            received[i].append(message)
            if message.get("n") == 49:
                return

    tasks = [asyncio.create_task(consume(i)) for i in range(len(subscriptions))]
    try:
        async with asyncio.timeout(5):  # subscribing is asynchronous: probe until everyone listens
            while not all(received):
                await bus.publish({"type": "probe"})
                await asyncio.sleep(0.01)
        for n in range(50):
            await bus.publish({"type": "stop", "run_id": "r", "segment_id": "s", "n": n, "note": "ü"})
        await asyncio.wait_for(asyncio.gather(*tasks), 5)
        for messages in received:
            stops = [m for m in messages if m["type"] == "stop"]
            assert [m["n"] for m in stops] == list(range(50))
            assert stops[0] == {"type": "stop", "run_id": "r", "segment_id": "s", "n": 0, "note": "ü"}
    finally:
        for task in tasks:
            task.cancel()
        for subscription in subscriptions:
            await subscription.aclose()  # type: ignore[attr-defined]

    # closing the bus ends a subscription
    async def first_message() -> dict[str, Any] | None:
        async for message in bus.subscribe():
            return message
        return None

    ending = asyncio.create_task(first_message())
    await asyncio.sleep(0.05)
    await bus.close()
    assert await asyncio.wait_for(ending, 3) is None


# -- backend-specific ----------------------------------------------------------------------------------


async def test_memory_sweeper_drops_expired_logs_and_meta() -> None:
    clock = FakeClock()
    log = MemoryEventLog(retention_seconds=10, meta_ttl_seconds=100, clock=clock, sweep_interval_seconds=0.01)
    await log.append("run", [entry(1)])
    clock.now += 11
    await asyncio.sleep(0.05)
    assert "run" not in log._logs and "run" in log._metas
    clock.now += 100
    await asyncio.sleep(0.05)
    assert not log._metas
    await log.close()


async def test_memory_offsets_survive_a_clock_going_back() -> None:
    clock = FakeClock()
    log = MemoryEventLog(clock=clock)
    first = (await log.append("run", [entry(1)]))[0].offset
    clock.now -= 3600
    second = await log.append("run", [entry(2), entry(3)])
    assert pos(first) < pos(second[0].offset) < pos(second[1].offset)
    await log.close()


async def test_memory_budget_drops_finished_logs_oldest_first_never_live_or_paused() -> None:
    clock = FakeClock()
    log = MemoryEventLog(clock=clock, max_bytes=10_000, sweep_interval_seconds=None)
    big = b"x" * 2_000
    await log.append("old-finished", [NewEntry("workflow_finished", big)])
    clock.now += 1
    await log.append("paused", [NewEntry("workflow_paused", big)])
    clock.now += 1
    await log.append("new-finished", [NewEntry("workflow_finished", big)])
    clock.now += 1
    await log.append("live", [NewEntry("text_chunk", big), NewEntry("text_chunk", big)])
    assert set(log._logs) == {"paused", "new-finished", "live"}
    assert (await log.bounds("old-finished")).last is not None  # meta survives
    await log.append("live", [NewEntry("text_chunk", big) for _ in range(5)])
    assert set(log._logs) == {"paused", "live"}
    await log.close()


async def test_redis_ttls_and_script_reload(redis_server_url: str) -> None:
    harness = RedisHarness(redis_server_url)
    try:
        log = RedisEventLog(harness.client, redis_server_url, harness.prefix, retention_seconds=120)
        await log.append("run", [entry(1, key="k")], fence=1)
        client = harness.client
        assert 110 < await client.ttl(log.log_key("run")) <= 120
        assert 110 < await client.ttl(log.keys_key("run")) <= 120
        assert 604000 < await client.ttl(log.meta_key("run")) <= 604800
        assert await client.hgetall(log.meta_key("run")) == {
            b"last": (await log.bounds("run")).last.encode(),  # type: ignore[union-attr]
            b"fence": b"1",
        }
        await client.expire(log.log_key("run"), 5)
        await log.touch("run")
        assert await client.ttl(log.log_key("run")) > 110

        fresh = _Script(f"return '{harness.prefix}'")  # unknown to the server: NOSCRIPT, then loaded
        assert await fresh(client, [], []) == harness.prefix.encode()
        assert await fresh(client, [], []) == harness.prefix.encode()

        decoding = aioredis.Redis.from_url(redis_server_url, decode_responses=True)
        with pytest.raises(ValueError):
            RedisEventLog(decoding, redis_server_url)
        await decoding.aclose()
    finally:
        await harness.cleanup()

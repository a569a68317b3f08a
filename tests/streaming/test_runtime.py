"""The runtime's terminal-event guarantee, in process against real stores (SQLite + memory log, and
PostgreSQL + Redis): streaming spec §6 and §11 scenarios 13 (a failure before the first node) and
22 (the outbox appended by the reaper after a try died between its terminal commit and the append).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker

from sluice.adapters.memory.event_log import MemoryControlBus, MemoryEventLog
from sluice.adapters.redis.event_log import RedisControlBus, RedisEventLog
from sluice.adapters.sql import repos
from sluice.adapters.sql import segments_repo as segs
from sluice.adapters.sql.db import create_engine, session_factory
from sluice.adapters.sql.migrate import upgrade
from sluice.engine import EngineSettings
from sluice.runtime.facts import run_facts
from sluice.runtime.graphs import GraphCache
from sluice.runtime.ports import ControlBus, EventLog, LogEntry
from sluice.runtime.reaper import Reaper
from sluice.runtime.segment import SegmentRunner
from sluice.runtime.terminal import Ending, commit_end
from sluice.services.apps import AppAuth, AppService
from sluice.services.runs import RunService
from tests.streaming.support import chain_dsl, private_database
from tests.support.services import unique_name


@dataclass
class Recorded:
    """A ``JobQueue`` that only records: the test runs each try itself, when it chooses."""

    jobs: list[tuple[str, str, tuple[str, ...]]] = field(default_factory=list)

    async def enqueue(self, job_id: str, function: str, *args: str) -> None:
        self.jobs.append((job_id, function, args))

    async def known(self, job_id: str) -> bool:
        return any(job[0] == job_id for job in self.jobs)

    async def close(self) -> None:
        return None


@dataclass
class Stores:
    db: async_sessionmaker[Any]
    log: EventLog
    control: ControlBus
    url: str


@pytest.fixture(params=["embedded", "distributed"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "embedded":
        url = f"sqlite+aiosqlite:///{tmp_path / 'runtime.db'}"
        upgrade(url)
        yield url
        return
    gen = private_database(request.getfixturevalue("postgres_database"))
    url = next(gen)
    upgrade(url)
    yield url
    gen.close()


@pytest.fixture
async def stores(database: str, request: pytest.FixtureRequest) -> AsyncIterator[Stores]:
    engine = create_engine(database)
    db = session_factory(engine)
    client = None
    log: EventLog
    control: ControlBus
    if database.startswith("sqlite"):
        log, control = MemoryEventLog(), MemoryControlBus()
    else:
        url = request.getfixturevalue("redis_server_url")
        client = aioredis.Redis.from_url(url)
        prefix = unique_name("rt")
        log, control = RedisEventLog(client, url, prefix=prefix), RedisControlBus(client, prefix)
    yield Stores(db, log, control, database)
    await log.close()
    if client is not None:
        await client.aclose()
    await engine.dispose()


async def started_run(stores: Stores, dsl: str, queue: Recorded) -> tuple[RunService, str, str]:
    apps = AppService(stores.db)
    outcome = await apps.import_app(dsl)
    async with stores.db() as session:
        app = await repos.get_app(session, outcome.app_id)
        assert app is not None
        tenant = await repos.get_tenant(session, app.tenant_id)
        assert tenant is not None
    runs = RunService(stores.db, stores.log, queue, stores.control, GraphCache())
    started = await runs.start(AppAuth(app, tenant), "u1", {"query": "x"})
    return runs, started.run_id, outcome.workflow_id


async def log_events(log: EventLog, run_id: str) -> list[LogEntry]:
    return await log.read(run_id, "0-0", 1000)


async def test_failure_before_the_first_node_ends_the_run(stores: Stores) -> None:
    """Scenario 13: the try cannot load the graph (it changed under it); the stream gets
    ``workflow_started`` then ``workflow_finished(failed)``, never a bare ``error`` event."""
    queue = Recorded()
    _, run_id, workflow_id = await started_run(stores, chain_dsl(2), queue)
    async with stores.db() as session, session.begin():
        await session.exec(
            text("UPDATE workflows SET dsl = 'version: [' WHERE id = :w"), params={"w": workflow_id}
        )
    runner = SegmentRunner(stores.db, stores.log, GraphCache(), EngineSettings(), "test-worker")
    (_, _, (try_id,)) = queue.jobs[0]
    await runner.run_try(try_id)
    entries = await log_events(stores.log, run_id)
    assert [e.event for e in entries] == ["workflow_started", "workflow_finished"]
    finished = json.loads(entries[-1].payload)
    assert finished["data"]["status"] == "failed"
    assert "cannot be loaded" in finished["data"]["error"]
    async with stores.db() as session:
        run = await segs.get_run(session, run_id)
        assert run is not None and run.status == "failed" and run.pending_events is None
        found = await segs.get_try(session, try_id)
        assert found is not None and found.status == "done"
    await runner.run_try(try_id)  # a repeated job: nothing to claim, nothing appended
    assert len(await log_events(stores.log, run_id)) == 2


async def test_outbox_is_appended_by_the_reaper(stores: Stores) -> None:
    """Scenario 22: the terminal state is committed with its outbox, then the try dies before the
    append; the reaper appends ``workflow_finished`` once the outbox is old enough, exactly once."""
    queue = Recorded()
    _, run_id, _ = await started_run(stores, chain_dsl(2), queue)
    async with stores.db() as session, session.begin():
        run = await segs.lock_run(session, run_id)
        assert run is not None
        segment = await segs.current_segment(session, run_id)
        assert segment is not None
        await segs.cancel_queued(session, segment.id)
        outcome = await commit_end(
            session, run, Ending("succeeded", outputs={"text": "x"}), run_facts(run), node_error=""
        )
        assert outcome.won
    assert [e.event for e in await log_events(stores.log, run_id)] == ["workflow_started"]
    reaper = Reaper(stores.db, stores.log, queue, interval=0.1, outbox_age=0.3)
    await reaper.tick()  # too young: left for the try that may still append it
    assert [e.event for e in await log_events(stores.log, run_id)] == ["workflow_started"]
    await asyncio.sleep(0.4)
    await reaper.tick()
    await reaper.tick()
    entries = await log_events(stores.log, run_id)
    assert [e.event for e in entries] == ["workflow_started", "workflow_finished"]
    assert json.loads(entries[-1].payload)["data"]["status"] == "succeeded"
    async with stores.db() as session:
        run = await segs.get_run(session, run_id)
        assert run is not None and run.pending_events is None and run.status == "succeeded"

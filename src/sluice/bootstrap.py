"""The composition root: the only place that chooses adapters by mode.

``Container.start(settings, role)`` opens what the role needs (an API process, a worker, or a
CLI command) and ``close()`` releases it in reverse order; nothing connects at import time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from sluice.adapters.memory.event_log import MemoryControlBus, MemoryEventLog
from sluice.adapters.memory.queue import InProcessQueue
from sluice.adapters.sql.db import create_engine, session_factory
from sluice.engine import EngineSettings
from sluice.runtime.graphs import GraphCache
from sluice.runtime.ports import ControlBus, EventLog, JobQueue
from sluice.runtime.segment import SegmentRunner
from sluice.services.apps import AppService
from sluice.services.runs import RUN_JOB, RunService
from sluice.services.streams import StreamService
from sluice.settings import Mode, Settings

log = logging.getLogger("sluice")
Role = Literal["api", "worker", "cli"]


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class Container:
    settings: Settings
    sql: AsyncEngine
    db: async_sessionmaker[AsyncSession]
    graphs: GraphCache
    apps: AppService
    event_log: EventLog | None = None
    control: ControlBus | None = None
    queue: JobQueue | None = None
    runner: SegmentRunner | None = None
    runs: RunService | None = None
    streams: StreamService | None = None
    _closers: list[object] = field(default_factory=list)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    async def start(cls, settings: Settings, role: Role) -> Container:
        sql = create_engine(settings.sql_url)
        db = session_factory(sql)
        container = cls(settings, sql, db, GraphCache(), AppService(db))
        if role == "cli":
            return container
        try:
            await container._open_runtime(role)
        except BaseException:
            await container.close()
            raise
        return container

    async def _open_runtime(self, role: Role) -> None:
        s = self.settings
        st = s.streaming
        if s.mode is Mode.embedded:
            self.event_log = MemoryEventLog(retention_seconds=st.pubsub_streams_retention_seconds)
            self.control = MemoryControlBus()
        else:
            import redis.asyncio as aioredis

            from sluice.adapters.redis.event_log import RedisControlBus, RedisEventLog

            assert s.redis_url is not None
            client = aioredis.Redis.from_url(s.redis_url)
            self._closers.append(client)
            self.event_log = RedisEventLog(
                client,
                s.redis_url,
                prefix=st.redis_key_prefix,
                retention_seconds=st.pubsub_streams_retention_seconds,
                block_ms=st.hub_block_ms,
            )
            self.control = RedisControlBus(client, prefix=st.redis_key_prefix)
        engine_settings = EngineSettings(max_steps=s.engine.max_steps, max_time_s=s.engine.max_time_s)
        if s.mode is Mode.embedded or role == "worker":
            self.runner = SegmentRunner(self.db, self.event_log, self.graphs, engine_settings, worker_id())
            self._tasks.append(asyncio.create_task(self._watch_control()))
        if s.mode is Mode.embedded:
            assert self.runner is not None
            self.queue = InProcessQueue({RUN_JOB: self.runner.run}, st.embedded_max_concurrent_tries)
        elif role == "api":
            from sluice.adapters.arq.queue import ArqQueue

            assert s.redis_url is not None
            self.queue = await ArqQueue.connect(s.redis_url, st.arq_queue_name)
        if self.queue is not None:
            self.runs = RunService(
                self.db, self.event_log, self.queue, self.control, self.graphs, s.api.app_max_active_requests
            )
        self.streams = StreamService(self.event_log, st.sse_ping_interval_seconds, st.replay_page_size)

    async def _watch_control(self) -> None:
        """Deliver stop requests for runs this process executes."""
        assert self.control is not None and self.runner is not None
        while True:
            try:
                async for message in self.control.subscribe():
                    if message.get("type") == "stop" and isinstance(message.get("run_id"), str):
                        self.runner.stop(message["run_id"])
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("control channel failed; resubscribing")
                await asyncio.sleep(1)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for resource in (self.queue, self.control, self.event_log):
            if resource is not None:
                with contextlib.suppress(Exception):
                    await resource.close()
        for closer in self._closers:
            with contextlib.suppress(Exception):
                await closer.aclose()  # type: ignore[attr-defined]
        await self.sql.dispose()

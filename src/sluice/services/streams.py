"""Run streams: admission of SSE streams (``RunStream``, in ``run_stream``) and the blocking-mode
wait (streaming spec §1.6), both served by the process's stream hub.

``RunStream.chunks()`` yields pre-encoded bytes (several frames per chunk under load).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from sluice.adapters.sql import segments_repo as segs
from sluice.adapters.sql.tables import WorkflowRun
from sluice.runtime.hub import StreamHub
from sluice.runtime.ports import EventLog
from sluice.services.errors import ServiceUnavailable
from sluice.services.run_stream import FINISHED, PAUSED, TERMINAL_STATUSES, RunStream, frame, prelude

__all__ = ["END_EVENTS", "RunStream", "StreamService", "frame", "prelude"]

log = logging.getLogger("sluice.streams")

END_EVENTS = frozenset({FINISHED})


class StreamService:
    def __init__(
        self,
        db: async_sessionmaker[AsyncSession],
        event_log: EventLog,
        hub: StreamHub,
        *,
        retry_ms: int = 1000,
        page_size: int = 500,
        snapshot_max_nodes: int = 5000,
        ping_interval: float = 10,
        send_timeout: float = 30,
    ) -> None:
        self.db = db
        self.log = event_log
        self.hub = hub
        self.retry_ms = retry_ms
        self.page_size = page_size
        self.snapshot_max_nodes = snapshot_max_nodes
        self.ping_interval = ping_interval
        self.send_timeout = send_timeout

    def open(
        self,
        run_id: str,
        task_id: str,
        *,
        after: str | None = None,
        run: WorkflowRun | None = None,
        snapshot: bool = False,
        continue_on_pause: bool = False,
    ) -> RunStream:
        """Admit a stream (503 ``too_many_streams`` beyond the limits). ``run`` is the row the caller
        looked up (a reconnect); without it the stream is a run POST's own, read from ``0-0``."""
        refused = self.hub.admit(run_id)
        if refused is not None:
            raise ServiceUnavailable(
                "Too many open streams; retry shortly.", code="too_many_streams", headers={"Retry-After": "1"}
            )
        return RunStream(self, run_id, task_id, after, run, snapshot, continue_on_pause)

    async def load_run(self, run_id: str) -> WorkflowRun | None:
        async with self.db() as session:
            return await segs.get_run(session, run_id)

    async def wait_terminal(self, run_id: str, timeout: float) -> dict[str, Any] | None:
        """The run's ``workflow_finished`` (or ``workflow_paused``) payload, or ``None`` in time."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        sub, _ = await self.hub.subscribe(run_id, frozenset({FINISHED, PAUSED}))
        try:
            while True:
                run = await self.load_run(run_id)
                if run is not None and run.status in TERMINAL_STATUSES and run.final_event:
                    return dict(run.final_event)
                while not sub.closed:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        return None
                    try:
                        async with asyncio.timeout(remaining):
                            await sub.wait()
                    except TimeoutError:
                        return None
                    for item in sub.take():
                        if item.event in (FINISHED, PAUSED) and item.payload is not None:
                            payload: dict[str, Any] = json.loads(item.payload)
                            return payload
                    if sub.alarm is not None:  # idle probe: the terminal entry may never have reached the log
                        sub.alarm = None
                        break
                if sub.closed:  # resync or shutdown: fall back to polling SQL
                    self.hub.unsubscribe(sub)
                    if loop.time() >= deadline:
                        return None
                    await asyncio.sleep(min(1.0, max(0.0, deadline - loop.time())))
                    sub, _ = await self.hub.subscribe(run_id, frozenset({FINISHED, PAUSED}))
        finally:
            self.hub.unsubscribe(sub)

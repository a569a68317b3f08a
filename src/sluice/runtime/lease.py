"""The lease of an active try (streaming spec §8.2) and the event-loop lag monitor.

Every ``HEARTBEAT_INTERVAL_SECONDS`` the heartbeat extends the try's lease if it is still
``active``, reads back its segment's ``stop_requested_at`` (the fallback when a Pub/Sub stop
message is lost) and touches the event log so a silent node cannot let it expire. No row means
the lease is lost: the owner cancels the try and writes nothing more.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from sluice.adapters.sql import segments_repo as segs
from sluice.runtime.ports import EventLog

log = logging.getLogger("sluice.runtime.lease")


class Lease:
    def __init__(
        self,
        db: async_sessionmaker[AsyncSession],
        event_log: EventLog,
        *,
        try_id: str,
        run_id: str,
        ttl: float,
        interval: float,
        on_lost: Callable[[], None],
        on_stop: Callable[[], None],
    ) -> None:
        self._db = db
        self._log = event_log
        self._try_id = try_id
        self._run_id = run_id
        self._ttl = ttl
        self._interval = interval
        self._on_lost = on_lost
        self._on_stop = on_stop
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._beat(), name=f"lease:{self._try_id}")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                async with self._db() as session, session.begin():
                    alive, stop_at = await segs.renew_lease(session, self._try_id, self._ttl)
            except Exception as exc:  # a database blip: the next beat tries again; the guard decides
                log.warning("try %s: lease renewal failed (%s)", self._try_id, exc)
                continue
            if not alive:
                log.warning("try %s: lease lost; cancelling", self._try_id)
                self._on_lost()
                return
            if stop_at is not None:
                self._on_stop()
            try:
                await self._log.touch(self._run_id)
            except Exception as exc:
                log.warning("run %s: touching the event log failed (%s)", self._run_id, exc)


class LoopLagMonitor:
    """Logs event-loop stalls over ``warn_seconds``: a loop-blocking node starves the heartbeat and
    gets re-run (sync code belongs in ``asyncio.to_thread``)."""

    def __init__(self, warn_seconds: float, describe: Callable[[], str], period: float = 0.25) -> None:
        self._warn = warn_seconds
        self._describe = describe
        self._period = period

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(self._period)
            lag = loop.time() - before - self._period
            if lag > self._warn:
                log.warning("event loop stalled for %.2fs (running: %s)", lag, self._describe())

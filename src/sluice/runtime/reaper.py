"""The reaper (streaming spec §8.3): it runs in every worker and in the embedded process.

Each tick: (1) an active try past its lease is ``abandoned`` and, unless its segment was asked to
stop (run ``stopped``) or it was the last allowed try (run ``failed``, ``worker lost (<n> tries)``),
replaced by a new try with the next fence, which is raised and enqueued after commit; (2) a try
still queued after ``ENQUEUE_GRACE_SECONDS`` whose job the queue does not know (the API died after
its commit, or the job was lost) is enqueued again under the same job id; (3) an outbox older than
``OUTBOX_RETRY_AFTER_SECONDS`` is appended. Conditional updates make concurrent reapers safe.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from sluice.adapters.sql import segments_repo as segs
from sluice.adapters.sql.tables import SegmentTry, utcnow
from sluice.runtime.facts import run_facts
from sluice.runtime.ports import EventLog, JobQueue
from sluice.runtime.terminal import Ending, Outcome, commit_end, publish_outbox

log = logging.getLogger("sluice.runtime.reaper")

RUN_TRY_JOB = "run_segment_try"


class Reaper:
    def __init__(
        self,
        db: async_sessionmaker[AsyncSession],
        event_log: EventLog,
        queue: JobQueue,
        *,
        interval: float = 5,
        max_tries: int = 3,
        enqueue_grace: float = 10,
        outbox_age: float = 5,
        max_event_bytes: int = 1 << 20,
        holds: Callable[[str], bool] | None = None,
    ) -> None:
        self._db = db
        self._holds = holds  # tries this process runs: alive by definition, whatever their lease says
        self._log = event_log
        self._queue = queue
        self._interval = interval
        self._max_tries = max_tries
        self._enqueue_grace = enqueue_grace
        self._outbox_age = outbox_age
        self._max_event_bytes = max_event_bytes
        self.recovered = 0

    async def run(self) -> None:
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reaper tick failed")
            await asyncio.sleep(self._interval)

    async def tick(self) -> None:
        async with self._db() as session:
            expired = await segs.expired_tries(session)
        for found in expired:
            await self._recover(found)
        await self._enqueue_lost()
        await self._flush_outboxes()

    async def _recover(self, found: SegmentTry) -> None:
        if self._holds is not None and self._holds(found.id):
            # a starved heartbeat in this very process: renew instead of re-running it beside itself
            async with self._db() as session, session.begin():
                await segs.renew_lease(session, found.id, self._interval * 3)
            return
        new_try: SegmentTry | None = None
        outcome = Outcome(False)
        async with self._db() as session, session.begin():
            run = await segs.lock_run(session, found.run_id)
            if not await segs.abandon(session, found.id):
                return  # renewed meanwhile, or another reaper got it
            segment = await segs.get_segment(session, found.segment_id)
            if run is None or segment is None:
                return
            if run.status not in segs.LIVE_STATUSES:
                await segs.end_segment(session, segment.id, None, run.status)
            elif segment.stop_requested_at is not None:
                facts = run_facts(run, segment.number)
                ending = Ending("stopped", "Stopped by user")
                outcome = await commit_end(session, run, ending, facts, node_error="Stopped by user")
                await segs.end_segment(session, segment.id, None, "stopped")
            elif found.number < self._max_tries:
                new_try = await segs.add_try(session, run, segment, found.number + 1)
            else:
                facts = run_facts(run, segment.number)
                ending = Ending("failed", f"worker lost ({found.number} tries)")
                outcome = await commit_end(session, run, ending, facts, node_error="worker lost")
                await segs.end_segment(session, segment.id, None, "failed")
        log.warning(
            "run %s: try %s (%s) lost its lease; %s",
            found.run_id,
            found.number,
            found.worker_id,
            f"try {new_try.number} queued" if new_try else "run ended",
        )
        self.recovered += 1
        if new_try is not None:
            try:
                await self._log.raise_fence(found.run_id, new_try.fence)
            except Exception as exc:  # the new try raises it again when it starts
                log.warning("run %s: raising the fence failed (%s)", found.run_id, exc)
            try:
                await self._queue.enqueue(new_try.job_id, RUN_TRY_JOB, new_try.id)
            except Exception as exc:  # step 2 enqueues it at a later tick
                log.warning("run %s: enqueueing try %s failed (%s)", found.run_id, new_try.id, exc)
        if outcome.won:
            await publish_outbox(
                self._db, self._log, found.run_id, outcome, max_event_bytes=self._max_event_bytes
            )

    async def _enqueue_lost(self) -> None:
        older_than = utcnow() - timedelta(seconds=self._enqueue_grace)
        async with self._db() as session:
            queued = await segs.stale_queued_tries(session, older_than)
        for found in queued:
            try:
                if await self._queue.known(found.job_id):
                    continue
                await self._queue.enqueue(found.job_id, RUN_TRY_JOB, found.id)
                log.warning("run %s: try %s was never enqueued; enqueued now", found.run_id, found.id)
            except Exception as exc:
                log.warning("run %s: probing or enqueueing try %s failed (%s)", found.run_id, found.id, exc)

    async def _flush_outboxes(self) -> None:
        older_than = utcnow() - timedelta(seconds=self._outbox_age)
        async with self._db() as session:
            runs = await segs.stale_outboxes(session, older_than)
        for run in runs:
            items = tuple(run.pending_events or ())
            outcome = Outcome(True, run.fence, items, run.pending_events_at)
            if await publish_outbox(
                self._db, self._log, run.id, outcome, max_event_bytes=self._max_event_bytes
            ):
                log.warning("run %s: appended a stale outbox (%d events)", run.id, len(items))

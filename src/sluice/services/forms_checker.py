"""The human-input timeout checker (human-input.md §7): node deadlines → ``timeout`` and a resume on
``__timeout``; the global expiry → ``expired`` and the paused run ``stopped`` with its terminal
event published. Then the resume-request sweep (§6.4). Every transition is conditional, so
overlapping checkers (several processes, a lagging tick) change each form at most once.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from sluice.adapters.sql import forms_repo as forms
from sluice.adapters.sql import segments_repo as segs
from sluice.adapters.sql.tables import HumanInputForm, SegmentTry, WorkflowRun
from sluice.runtime.ports import EventLog, JobQueue
from sluice.runtime.reaper import RUN_TRY_JOB
from sluice.runtime.terminal import Ending, end_run_now
from sluice.services.human_input import Clock, HumanInputConfig, claim_resume, naive

log = logging.getLogger("sluice.forms.checker")


class FormChecker:
    def __init__(
        self,
        db: async_sessionmaker[AsyncSession],
        event_log: EventLog,
        queue: JobQueue,
        clock: Clock,
        config: HumanInputConfig,
        *,
        interval_seconds: float = 60,
        batch: int = 100,
        max_event_bytes: int = 1 << 20,
    ) -> None:
        self._db = db
        self._log = event_log
        self._queue = queue
        self._clock = clock
        self._config = config
        self._interval = interval_seconds
        self._batch = batch
        self._max_event_bytes = max_event_bytes

    async def run(self) -> None:
        """The embedded/worker periodic task: one tick per interval for as long as the process lives."""
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("human-input checker tick failed")
            await asyncio.sleep(self._interval)

    async def tick(self) -> None:
        now = naive(self._clock.now())
        after = ""
        while True:
            async with self._db() as session:
                due = await forms.due_forms(
                    session, now, self._config.global_timeout_seconds, after, self._batch
                )
            for form in due:
                try:
                    await self._handle(form, now)
                except Exception:
                    log.exception("form %s: checker failed; the next tick retries", form.id)
            if len(due) < self._batch:
                break
            after = due[-1].id
        await self._sweep(now)

    def _globally_expired(self, form: HumanInputForm, now: datetime) -> bool:
        g = self._config.global_timeout_seconds
        return g > 0 and form.workflow_run_id is not None and form.created_at <= now - timedelta(seconds=g)

    async def _handle(self, form: HumanInputForm, now: datetime) -> None:
        if form.form_kind == "delivery_test" or form.workflow_run_id is None:
            async with self._db() as session, session.begin():
                await forms.close_form(session, form.id, "timeout", "delivery_test_timeout", now)
            return
        run_id = form.workflow_run_id
        if self._globally_expired(form, now):
            await self._expire_globally(form, run_id, now)
            return
        resumed: SegmentTry | None = None
        async with self._db() as session, session.begin():
            run = await segs.lock_run(session, run_id)
            if await forms.close_form(session, form.id, "timeout", "node_timeout", now) and run is not None:
                if run.status in segs.LIVE_STATUSES:
                    await forms.add_request(session, run_id, form.id, "timeout", now)
                    resumed = await claim_resume(session, run, now)
        if resumed is not None:
            await self._enqueue(resumed)

    async def _expire_globally(self, form: HumanInputForm, run_id: str, now: datetime) -> None:
        """§7.2: a paused run is stopped; a running one waits for the next tick; a finished one
        only closes the form."""
        async with self._db() as session, session.begin():
            run = await segs.lock_run(session, run_id)
            if run is None or run.status not in segs.LIVE_STATUSES:
                await forms.close_form(session, form.id, "expired", "run_ended", now)
                return
            if run.status != "paused":
                return
        error = f"Human input global timeout at node {form.node_id}"

        async def expire(session: AsyncSession, run: WorkflowRun) -> bool:
            if run.status != "paused":
                return False
            await forms.expire_run_forms(session, run.id, "global_timeout", now)
            await forms.close_pause(session, run.id, "global_timeout", now)
            await forms.consume_requests(session, run.id, "global_timeout", now)
            return True

        await end_run_now(
            self._db,
            self._log,
            run_id,
            Ending("stopped", error, finished_at=now.replace(tzinfo=UTC)),
            extra=expire,
            node_error=error,
            max_event_bytes=self._max_event_bytes,
        )

    async def _sweep(self, now: datetime) -> None:
        """Open requests of a paused run older than one interval: claim and enqueue (a lost message
        or a crash between commit and enqueue cannot strand a run)."""
        older = now - timedelta(seconds=self._interval)
        async with self._db() as session:
            run_ids = await forms.stale_request_runs(session, older)
        for run_id in run_ids:
            resumed: SegmentTry | None = None
            async with self._db() as session, session.begin():
                run = await segs.lock_run(session, run_id)
                if run is None:
                    continue
                if run.status not in segs.LIVE_STATUSES:
                    await forms.consume_requests(session, run_id, "run_ended", now)
                    continue
                resumed = await claim_resume(session, run, now)
            if resumed is not None:
                await self._enqueue(resumed)

    async def _enqueue(self, try_: SegmentTry) -> None:
        try:
            await self._queue.enqueue(try_.job_id, RUN_TRY_JOB, try_.id)
        except Exception as exc:
            log.warning("run %s: enqueueing the resume failed (%s)", try_.run_id, exc)

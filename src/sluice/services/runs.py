"""Runs: start (validate, insert, publish ``workflow_started``, enqueue), read and stop."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from sluice.adapters.sql import repos
from sluice.adapters.sql.tables import EndUser, WorkflowRun
from sluice.engine.inputs import InputError, prepare_inputs
from sluice.runtime.dify_events import RunFacts, workflow_finished, workflow_started
from sluice.runtime.graphs import GraphCache
from sluice.runtime.ports import ControlBus, EventLog, JobQueue
from sluice.runtime.segment import naive, publish, run_facts
from sluice.services.apps import AppAuth
from sluice.services.errors import (
    AppModeMismatch,
    InvalidParam,
    NotFound,
    ServiceUnavailable,
    TooManyRequests,
)

RUN_JOB = "run_segment"


@dataclass(frozen=True, slots=True)
class StartedRun:
    run_id: str
    task_id: str
    facts: RunFacts


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


class RunService:
    def __init__(
        self,
        db: async_sessionmaker[AsyncSession],
        event_log: EventLog,
        queue: JobQueue,
        control: ControlBus,
        graphs: GraphCache,
        max_active_per_app: int = 0,
    ) -> None:
        self._db = db
        self._log = event_log
        self._queue = queue
        self._control = control
        self._graphs = graphs
        self._max_active = max_active_per_app

    async def start(
        self, auth: AppAuth, user: str, inputs: dict[str, Any], *, created_from: str = "service-api"
    ) -> StartedRun:
        app = auth.app
        if app.mode != "workflow":
            raise AppModeMismatch()
        async with self._db() as session:
            workflow = await repos.get_workflow(session, app.workflow_id) if app.workflow_id else None
        if workflow is None:
            raise InvalidParam("Workflow not published")
        graph = self._graphs.get(workflow)
        try:
            prepared = prepare_inputs(graph.start_variables, inputs)
        except InputError as exc:
            raise InvalidParam(exc.message) from exc
        run_id, task_id = str(uuid.uuid4()), str(uuid.uuid4())
        async with self._db() as session, session.begin():
            if self._max_active and await repos.count_live_runs(session, app.id) >= self._max_active:
                raise TooManyRequests(
                    "Too many requests. Please try again later. The current maximum concurrent requests "
                    f"allowed for {app.id} is {self._max_active}.",
                    headers={"Retry-After": "5"},
                )
            end_user = await repos.end_user(session, app, "service_api", user, anonymous=False)
            created_at = datetime.now(UTC)
            stored = {
                **prepared,
                "sys.files": [],
                "sys.user_id": user,
                "sys.app_id": app.id,
                "sys.workflow_id": workflow.id,
                "sys.workflow_run_id": run_id,
                "sys.timestamp": int(created_at.timestamp()),
            }
            run = WorkflowRun(
                id=run_id,
                tenant_id=app.tenant_id,
                app_id=app.id,
                workflow_id=workflow.id,
                task_id=task_id,
                version=workflow.version,
                created_from=created_from,
                inputs=stored,
                created_by_role="end_user",
                created_by=end_user.id,
                created_at=naive(created_at),
            )
            session.add(run)
            await repos.add_app_log(session, run)
        facts = run_facts(run)
        try:
            await publish(self._log, run_id, workflow_started(facts, stored), run_start=True)
        except Exception as exc:
            await self._fail_at_creation(run, facts, "Event log unavailable")
            raise ServiceUnavailable("The event log is unavailable.", code="event_log_unavailable") from exc
        try:
            await self._queue.enqueue(f"run:{run_id}", RUN_JOB, run_id)
        except Exception as exc:
            await self._fail_at_creation(run, facts, "Job queue unavailable")
            raise ServiceUnavailable("The job queue is unavailable.", code="queue_unavailable") from exc
        return StartedRun(run_id, task_id, facts)

    async def _fail_at_creation(self, run: WorkflowRun, facts: RunFacts, error: str) -> None:
        now = datetime.now(UTC)
        mapped = workflow_finished(facts, status="failed", outputs={}, error=error, finished_at=now)
        async with self._db() as session, session.begin():
            await repos.finish_run(
                session,
                run.id,
                status="failed",
                outputs={},
                error=error,
                finished_at=naive(now),
                elapsed_time=0,
                total_steps=0,
                total_tokens=0,
                exceptions_count=0,
                final_event=mapped.payload,
            )
        try:
            await publish(self._log, run.id, mapped)
        except Exception:  # the stored final_event still answers later readers
            return

    async def get(self, auth: AppAuth, run_id: str) -> WorkflowRun:
        if not is_uuid(run_id):
            raise NotFound("Workflow run not found.")
        async with self._db() as session:
            run = await repos.get_run(session, run_id)
        if run is None or run.app_id != auth.app.id:
            raise NotFound("Workflow run not found.")
        return run

    async def find_for_user(self, auth: AppAuth, task_or_run_id: str, user: str) -> WorkflowRun | None:
        """The run named by a task or run id, if it is this app's and this end user's."""
        async with self._db() as session:
            run = await repos.run_by_task_or_id(session, task_or_run_id)
            if run is None or run.app_id != auth.app.id:
                return None
            end_user = await session.get(EndUser, run.created_by)
        if end_user is None or end_user.session_id != user:
            return None
        return run

    async def stop(self, auth: AppAuth, task_or_run_id: str, user: str) -> None:
        """Stop a live run of this app and end user; anything else succeeds without effect."""
        run = await self.find_for_user(auth, task_or_run_id, user)
        if run is None or run.status != "running":
            return
        now = datetime.now(UTC)
        facts = run_facts(run)
        mapped = workflow_finished(
            facts, status="stopped", outputs={}, error="Stopped by user", finished_at=now
        )
        async with self._db() as session, session.begin():
            unclaimed = await session.exec(
                update(WorkflowRun)
                .where(col(WorkflowRun.id) == run.id, col(WorkflowRun.worker_id).is_(None))
                .values(worker_id="stopped-before-start")
            )
            before_start = bool(unclaimed.rowcount)
            if before_start:
                won = await repos.finish_run(
                    session,
                    run.id,
                    status="stopped",
                    outputs={},
                    error="Stopped by user",
                    finished_at=naive(now),
                    elapsed_time=(now - facts.created_at).total_seconds(),
                    total_steps=0,
                    total_tokens=0,
                    exceptions_count=0,
                    final_event=mapped.payload,
                )
            else:
                won = await repos.request_stop(session, run.id, naive(now))
        if not won:
            return
        if before_start:
            await publish(self._log, run.id, mapped)
        else:
            await self._control.publish({"type": "stop", "run_id": run.id})

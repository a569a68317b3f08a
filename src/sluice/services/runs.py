"""Runs: start (validate, insert, publish ``workflow_started``, enqueue), read and stop.

Start (streaming spec §1.5): one transaction inserts the run ``running``, segment 0 ``queued``
and its first try ``queued``; after commit ``workflow_started`` is appended and the try's job
(``seg-try:<try id>``) enqueued. From the commit on, the run belongs to no request: a client
disconnect never touches it. Stop (§7.2), under the run lock: a paused run ends ``stopped`` here;
a segment no worker has claimed is cancelled and the run ends ``stopped`` here; an active segment
gets its stop request (first wins), published on the control bus after commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from sluice.adapters.sql import repos
from sluice.adapters.sql import segments_repo as segs
from sluice.adapters.sql.tables import EndUser, WorkflowRun
from sluice.engine.inputs import InputError, prepare_inputs
from sluice.runtime.dify_events import RunFacts, workflow_started
from sluice.runtime.facts import naive, run_facts
from sluice.runtime.graphs import GraphCache
from sluice.runtime.ports import ControlBus, EventLog, JobQueue
from sluice.runtime.reaper import RUN_TRY_JOB
from sluice.runtime.terminal import Ending, Outcome, commit_end, end_run_now, publish_outbox
from sluice.runtime.writer import to_entry
from sluice.services.apps import AppAuth
from sluice.services.errors import (
    AppModeMismatch,
    InvalidParam,
    NotFound,
    ServiceUnavailable,
    TooManyRequests,
)

RUN_JOB = RUN_TRY_JOB  # the job every segment try runs as: run_segment_try(try_id)
STOPPED_BY_USER = "Stopped by user"


@dataclass(frozen=True, slots=True)
class ChatTurn:
    """What an advanced-chat turn adds to a run (engine.md §3.2): the ``sys`` chat variables, the
    conversation's variable values, its stored inputs when it continues (no re-validation), and a
    hook that inserts the conversation and message rows in the run's own transaction."""

    query: str
    conversation_id: str
    dialogue_count: int
    conversation: dict[str, Any] = field(default_factory=dict)
    stored_inputs: dict[str, Any] | None = None
    on_insert: Callable[[AsyncSession, WorkflowRun, EndUser, dict[str, Any]], Awaitable[None]] | None = None


class FileResolver(Protocol):
    async def resolve(
        self,
        auth: AppAuth,
        user: str,
        variables: Any,
        prepared: dict[str, Any],
        files: Any,
        features: Any,
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]: ...


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
        max_event_bytes: int = 1 << 20,
    ) -> None:
        self._db = db
        self._log = event_log
        self._queue = queue
        self._control = control
        self._graphs = graphs
        self._max_active = max_active_per_app
        self._max_event_bytes = max_event_bytes
        self.file_resolver: FileResolver | None = None  # set by the composition root (file inputs)

    async def start(
        self,
        auth: AppAuth,
        user: str,
        inputs: dict[str, Any],
        *,
        created_from: str = "service-api",
        account_id: str | None = None,
        files: list[Any] | None = None,
        chat: ChatTurn | None = None,
    ) -> StartedRun:
        """``account_id`` set: the run is the account's (user API), no end user is involved.
        ``chat`` set: an advanced-chat turn; ``files`` become ``sys.files``."""
        app = auth.app
        if app.mode != ("advanced-chat" if chat is not None else "workflow"):
            raise AppModeMismatch()
        async with self._db() as session:
            workflow = await repos.get_workflow(session, app.workflow_id) if app.workflow_id else None
        if workflow is None:
            raise InvalidParam("Workflow not published")
        graph = self._graphs.get(workflow)
        sys_files: list[dict[str, Any]] = []
        if chat is not None and chat.stored_inputs is not None:
            prepared = dict(chat.stored_inputs)
        else:
            try:
                prepared = prepare_inputs(graph.start_variables, inputs)
            except InputError as exc:
                raise InvalidParam(exc.message) from exc
            if self.file_resolver is not None:
                prepared, sys_files = await self.file_resolver.resolve(
                    auth, user, graph.start_variables, prepared, None, graph.features
                )
        if files and self.file_resolver is not None:
            _, sys_files = await self.file_resolver.resolve(auth, user, (), {}, files, graph.features)
        run_id, task_id = str(uuid.uuid4()), str(uuid.uuid4())
        async with self._db() as session, session.begin():
            if self._max_active and await repos.count_live_runs(session, app.id) >= self._max_active:
                raise TooManyRequests(
                    "Too many requests. Please try again later. The current maximum concurrent requests "
                    f"allowed for {app.id} is {self._max_active}.",
                    headers={"Retry-After": "5"},
                )
            creator_role, creator = "account", account_id or ""
            end_user: EndUser | None = None
            if account_id is None:
                end_user = await repos.end_user(session, app, "service_api", user, anonymous=False)
                creator_role, creator = "end_user", end_user.id
            created_at = datetime.now(UTC)
            stored = {
                **prepared,
                "sys.files": sys_files,
                "sys.user_id": user,
                "sys.app_id": app.id,
                "sys.workflow_id": workflow.id,
                "sys.workflow_run_id": run_id,
                "sys.timestamp": int(created_at.timestamp()),
            }
            if chat is not None:
                stored.update(
                    {
                        "sys.query": chat.query,
                        "sys.conversation_id": chat.conversation_id,
                        "sys.dialogue_count": chat.dialogue_count,
                    }
                )
                stored.update({f"conversation.{k}": v for k, v in chat.conversation.items()})
            run = WorkflowRun(
                id=run_id,
                tenant_id=app.tenant_id,
                app_id=app.id,
                workflow_id=workflow.id,
                task_id=task_id,
                version=workflow.version,
                created_from=created_from,
                inputs=stored,
                created_by_role=creator_role,
                created_by=creator,
                created_at=naive(created_at),
            )
            segment, first_try = segs.first_segment(run)
            for row in (run, segment, first_try):  # no relationships: insert in foreign-key order
                session.add(row)
                await session.flush()
            await repos.add_app_log(session, run)
            if chat is not None and chat.on_insert is not None and end_user is not None:
                await chat.on_insert(session, run, end_user, prepared)
        facts = run_facts(run)
        try:
            shown = {
                k: v
                for k, v in stored.items()
                if not k.startswith("conversation.") and k != "sys.conversation_id"
            }
            entry = to_entry(workflow_started(facts, shown), self._max_event_bytes)
            await self._log.append(run_id, [entry], fence=first_try.fence, run_start=True)
        except Exception as exc:
            await self._fail_at_creation(run_id, segment.id, "Event log unavailable")
            raise ServiceUnavailable("The event log is unavailable.", code="event_log_unavailable") from exc
        try:
            await self._queue.enqueue(first_try.job_id, RUN_JOB, first_try.id)
        except Exception as exc:
            await self._fail_at_creation(run_id, segment.id, "Job queue unavailable")
            raise ServiceUnavailable("The job queue is unavailable.", code="queue_unavailable") from exc
        return StartedRun(run_id, task_id, facts)

    async def _fail_at_creation(self, run_id: str, segment_id: str, error: str) -> None:
        async def cancel(session: AsyncSession, run: WorkflowRun) -> bool:
            await segs.cancel_queued(session, segment_id)
            return True

        await end_run_now(
            self._db,
            self._log,
            run_id,
            Ending("failed", error),
            extra=cancel,
            node_error=error,
            max_event_bytes=self._max_event_bytes,
        )

    async def get(self, auth: AppAuth, run_id: str) -> WorkflowRun:
        if not is_uuid(run_id):
            raise NotFound("Workflow run not found.")
        async with self._db() as session:
            run = await repos.get_run(session, run_id)
        if run is None or run.app_id != auth.app.id:
            raise NotFound("Workflow run not found.")
        return run

    async def find_for_user(
        self, auth: AppAuth, task_or_run_id: str, user: str, *, account_id: str | None = None
    ) -> WorkflowRun | None:
        """The run named by a task or run id, if it is this app's and this end user's (or, with
        ``account_id``, started by that account)."""
        async with self._db() as session:
            run = await repos.run_by_task_or_id(session, task_or_run_id)
            if run is None or run.app_id != auth.app.id:
                return None
            if account_id is not None:
                return run if (run.created_by_role, run.created_by) == ("account", account_id) else None
            if run.created_by_role != "end_user":
                return None
            end_user = await session.get(EndUser, run.created_by)
        if end_user is None or end_user.session_id != user:
            return None
        return run

    async def stop(
        self, auth: AppAuth, task_or_run_id: str, user: str, *, account_id: str | None = None
    ) -> None:
        """Stop a live run of this app and end user (or account); anything else succeeds without effect."""
        run = await self.find_for_user(auth, task_or_run_id, user, account_id=account_id)
        if run is None or run.status not in segs.LIVE_STATUSES:
            return
        await self.stop_run(run.id)

    async def stop_run(self, run_id: str) -> None:
        """Streaming spec §7.2. The reply follows commit and signal, not the end of the run."""
        outcome = Outcome(False)
        signal: dict[str, str] | None = None
        async with self._db() as session, session.begin():
            run = await segs.lock_run(session, run_id)
            if run is None or run.status not in segs.LIVE_STATUSES:
                return
            segment = await segs.current_segment(session, run_id)
            number = segment.number if segment is not None else run.segment
            ending = Ending("stopped", STOPPED_BY_USER)
            if run.status == "paused" or segment is None:
                outcome = await commit_end(
                    session, run, ending, run_facts(run, number), node_error=STOPPED_BY_USER
                )
            elif segment.status == "queued" and await segs.cancel_queued(session, segment.id):
                outcome = await commit_end(
                    session, run, ending, run_facts(run, number), node_error=STOPPED_BY_USER
                )
            elif segment.status in ("queued", "active"):
                if await segs.request_stop(session, segment.id):
                    signal = {"type": "stop", "run_id": run_id, "segment_id": segment.id}
        if outcome.won:
            await publish_outbox(self._db, self._log, run_id, outcome, max_event_bytes=self._max_event_bytes)
        if signal is not None:
            try:
                await self._control.publish(signal)
            except Exception:  # the heartbeat reads the stop request back within one interval
                return

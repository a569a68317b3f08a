"""SQL of the runtime's durability: segments, tries, leases, node results, the outbox.

No commits here: callers own the transaction. Every write a try makes goes through ``guard`` first
(in the same transaction), so a try that lost its lease writes nothing (streaming spec I7). Lease
times use the database clock on PostgreSQL and the process clock on SQLite (spec §8.2).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, update
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from sluice.adapters.sql.tables import (
    RunSegment,
    SegmentTry,
    WorkflowNodeExecution,
    WorkflowRun,
    utcnow,
)

LIVE_STATUSES = ("running", "paused")
RECORDED_STATUSES = ("succeeded", "exception", "failed")


def job_id(try_id: str) -> str:
    return f"seg-try:{try_id}"


def _is_postgres(session: AsyncSession) -> bool:
    bind = session.bind
    return bind is not None and bind.dialect.name == "postgresql"


def clock(session: AsyncSession, plus_seconds: float = 0.0) -> Any:
    """``now + plus_seconds`` as naive UTC: a SQL expression on PostgreSQL, a value on SQLite."""
    if _is_postgres(session):
        now: ColumnElement[Any] = func.timezone("UTC", func.now())
        return now + timedelta(seconds=plus_seconds) if plus_seconds else now
    return utcnow() + timedelta(seconds=plus_seconds)


@dataclass(frozen=True, slots=True)
class Claimed:
    run: WorkflowRun
    segment: RunSegment
    try_: SegmentTry


# -- runs -------------------------------------------------------------------------------------------


async def lock_run(session: AsyncSession, run_id: str) -> WorkflowRun | None:
    """The run row, locked for this transaction (``FOR UPDATE`` on PostgreSQL; SQLite's
    ``BEGIN IMMEDIATE`` already serialises writers)."""
    stmt = select(WorkflowRun).where(WorkflowRun.id == run_id).with_for_update()
    return (await session.exec(stmt.execution_options(populate_existing=True))).first()


async def get_run(session: AsyncSession, run_id: str) -> WorkflowRun | None:
    stmt = select(WorkflowRun).where(WorkflowRun.id == run_id)
    return (await session.exec(stmt.execution_options(populate_existing=True))).first()


async def end_run(
    session: AsyncSession,
    run_id: str,
    *,
    status: str,
    outputs: dict[str, Any] | None,
    error: str | None,
    finished_at: datetime,
    elapsed_time: float,
    total_steps: int,
    total_tokens: int,
    exceptions_count: int,
    final_event: dict[str, Any],
    pending: list[dict[str, Any]],
    pending_at: datetime,
) -> bool:
    """The one way a run turns terminal: a conditional update; only the winner sees ``True``.
    ``pending`` (the outbox) holds the events to append after commit."""
    stmt = (
        update(WorkflowRun)
        .where(col(WorkflowRun.id) == run_id, col(WorkflowRun.status).in_(LIVE_STATUSES))
        .values(
            status=status,
            outputs=outputs,
            error=error,
            finished_at=finished_at,
            elapsed_time=elapsed_time,
            total_steps=total_steps,
            total_tokens=total_tokens,
            exceptions_count=exceptions_count,
            final_event=final_event,
            pending_events=pending,
            pending_events_at=pending_at,
        )
    )
    return bool((await session.exec(stmt)).rowcount)


async def pause_run(
    session: AsyncSession, run_id: str, pending: list[dict[str, Any]], pending_at: datetime
) -> bool:
    stmt = (
        update(WorkflowRun)
        .where(col(WorkflowRun.id) == run_id, col(WorkflowRun.status) == "running")
        .values(status="paused", pending_events=pending, pending_events_at=pending_at)
    )
    return bool((await session.exec(stmt)).rowcount)


async def clear_outbox(session: AsyncSession, run_id: str, filled_at: datetime | None) -> None:
    """Empty the outbox unless it was refilled since ``filled_at`` (a later pause or end)."""
    stmt = update(WorkflowRun).where(col(WorkflowRun.id) == run_id)
    if filled_at is not None:
        stmt = stmt.where(col(WorkflowRun.pending_events_at) == filled_at)
    await session.exec(stmt.values(pending_events=None, pending_events_at=None))


async def stale_outboxes(
    session: AsyncSession, older_than: datetime, limit: int = 100
) -> Sequence[WorkflowRun]:
    stmt = (
        select(WorkflowRun)
        .where(
            col(WorkflowRun.pending_events_at).is_not(None), col(WorkflowRun.pending_events_at) < older_than
        )
        .limit(limit)
    )
    return (await session.exec(stmt)).all()


# -- segments and tries -----------------------------------------------------------------------------


def first_segment(run: WorkflowRun) -> tuple[RunSegment, SegmentTry]:
    """Segment 0 and its first try, for a run being inserted in the same transaction."""
    segment = RunSegment(
        run_id=run.id, number=0, reason="initial", status="queued", created_at=run.created_at
    )
    try_ = SegmentTry(
        segment_id=segment.id, run_id=run.id, number=1, fence=1, job_id="", created_at=run.created_at
    )
    try_.job_id = job_id(try_.id)
    run.fence = 1
    return segment, try_


async def current_segment(session: AsyncSession, run_id: str) -> RunSegment | None:
    stmt = (
        select(RunSegment).where(RunSegment.run_id == run_id).order_by(col(RunSegment.number).desc()).limit(1)
    )
    return (await session.exec(stmt.execution_options(populate_existing=True))).first()


async def get_segment(session: AsyncSession, segment_id: str) -> RunSegment | None:
    stmt = select(RunSegment).where(RunSegment.id == segment_id)
    return (await session.exec(stmt.execution_options(populate_existing=True))).first()


async def get_try(session: AsyncSession, try_id: str) -> SegmentTry | None:
    stmt = select(SegmentTry).where(SegmentTry.id == try_id)
    return (await session.exec(stmt.execution_options(populate_existing=True))).first()


async def claim(session: AsyncSession, try_id: str, worker_id: str, lease_ttl: float) -> Claimed | None:
    """``queued`` → ``active`` with a lease, under the run lock; ``None`` if the try is not queued
    (a repeated job, a cancelled try) or its run is over."""
    found = await get_try(session, try_id)
    if found is None or found.status != "queued":
        return None
    run = await lock_run(session, found.run_id)
    if run is None:
        return None
    if run.status != "running":  # ended (or paused) before this try started: it never will
        await session.exec(
            update(SegmentTry)
            .where(col(SegmentTry.id) == try_id, col(SegmentTry.status) == "queued")
            .values(status="cancelled", ended_at=utcnow())
        )
        return None
    claimed = await session.exec(
        update(SegmentTry)
        .where(col(SegmentTry.id) == try_id, col(SegmentTry.status) == "queued")
        .values(
            status="active",
            worker_id=worker_id,
            lease_expires_at=clock(session, lease_ttl),
            claimed_at=clock(session),
        )
    )
    if not claimed.rowcount:
        return None
    await session.exec(
        update(RunSegment)
        .where(col(RunSegment.id) == found.segment_id, col(RunSegment.status).in_(("queued", "active")))
        .values(status="active", active_try_id=try_id)
    )
    segment = await get_segment(session, found.segment_id)
    try_ = await get_try(session, try_id)
    if segment is None or try_ is None or segment.active_try_id != try_id:
        return None
    return Claimed(run, segment, try_)


async def guard(session: AsyncSession, try_id: str) -> bool:
    """Lock the try row if it is still ``active``; every write of a try is conditional on this."""
    stmt = (
        update(SegmentTry)
        .where(col(SegmentTry.id) == try_id, col(SegmentTry.status) == "active")
        .values(status="active")
    )
    return bool((await session.exec(stmt)).rowcount)


async def renew_lease(session: AsyncSession, try_id: str, lease_ttl: float) -> tuple[bool, datetime | None]:
    """Extend the lease of an active try; ``(alive, stop_requested_at of its segment)``."""
    stmt = (
        update(SegmentTry)
        .where(col(SegmentTry.id) == try_id, col(SegmentTry.status) == "active")
        .values(lease_expires_at=clock(session, lease_ttl))
    )
    if not (await session.exec(stmt)).rowcount:
        return False, None
    query = (
        select(RunSegment.stop_requested_at)
        .join(SegmentTry, col(SegmentTry.segment_id) == col(RunSegment.id))
        .where(SegmentTry.id == try_id)
    )
    return True, (await session.exec(query)).first()


async def release_lease(session: AsyncSession, try_id: str) -> None:
    """A try handed back on shutdown: its lease ends now, so a reaper re-runs it at its next tick."""
    await session.exec(
        update(SegmentTry)
        .where(col(SegmentTry.id) == try_id, col(SegmentTry.status) == "active")
        .values(lease_expires_at=clock(session))
    )


async def end_segment(session: AsyncSession, segment_id: str, try_id: str | None, end_reason: str) -> None:
    at = utcnow()
    await session.exec(
        update(RunSegment)
        .where(col(RunSegment.id) == segment_id, col(RunSegment.status).in_(("queued", "active")))
        .values(status="ended", end_reason=end_reason, ended_at=at, active_try_id=None)
    )
    if try_id is not None:
        await session.exec(
            update(SegmentTry)
            .where(col(SegmentTry.id) == try_id, col(SegmentTry.status) == "active")
            .values(status="done", ended_at=at)
        )


async def cancel_queued(session: AsyncSession, segment_id: str) -> bool:
    """A segment no try has claimed yet: segment and its queued try → ``cancelled``."""
    at = utcnow()
    active = (
        await session.exec(
            select(SegmentTry.id).where(SegmentTry.segment_id == segment_id, SegmentTry.status == "active")
        )
    ).first()
    if active is not None:
        return False
    await session.exec(
        update(SegmentTry)
        .where(col(SegmentTry.segment_id) == segment_id, col(SegmentTry.status) == "queued")
        .values(status="cancelled", ended_at=at)
    )
    await session.exec(
        update(RunSegment)
        .where(col(RunSegment.id) == segment_id, col(RunSegment.status).in_(("queued", "active")))
        .values(status="cancelled", end_reason="stopped", ended_at=at, active_try_id=None)
    )
    return True


async def request_stop(session: AsyncSession, segment_id: str) -> bool:
    """First stop request wins; later ones change nothing."""
    stmt = (
        update(RunSegment)
        .where(col(RunSegment.id) == segment_id, col(RunSegment.stop_requested_at).is_(None))
        .values(stop_requested_at=utcnow())
    )
    return bool((await session.exec(stmt)).rowcount)


async def expired_tries(session: AsyncSession, limit: int = 100) -> Sequence[SegmentTry]:
    stmt = (
        select(SegmentTry)
        .where(SegmentTry.status == "active", col(SegmentTry.lease_expires_at) < clock(session))
        .limit(limit)
    )
    return (await session.exec(stmt)).all()


async def abandon(session: AsyncSession, try_id: str) -> bool:
    """An active try past its lease → ``abandoned`` (conditional: concurrent reapers are safe)."""
    stmt = (
        update(SegmentTry)
        .where(
            col(SegmentTry.id) == try_id,
            col(SegmentTry.status) == "active",
            col(SegmentTry.lease_expires_at) < clock(session),
        )
        .values(status="abandoned", ended_at=utcnow())
    )
    return bool((await session.exec(stmt)).rowcount)


async def add_try(session: AsyncSession, run: WorkflowRun, segment: RunSegment, number: int) -> SegmentTry:
    """A new try of ``segment``: the run's fence grows by one and the try takes it."""
    fence = run.fence + 1
    await session.exec(update(WorkflowRun).where(col(WorkflowRun.id) == run.id).values(fence=fence))
    run.fence = fence
    try_ = SegmentTry(segment_id=segment.id, run_id=run.id, number=number, fence=fence, job_id="")
    try_.job_id = job_id(try_.id)
    session.add(try_)
    await session.exec(
        update(RunSegment).where(col(RunSegment.id) == segment.id).values(status="queued", active_try_id=None)
    )
    return try_


async def stale_queued_tries(
    session: AsyncSession, older_than: datetime, limit: int = 100
) -> Sequence[SegmentTry]:
    stmt = (
        select(SegmentTry)
        .where(SegmentTry.status == "queued", col(SegmentTry.created_at) < older_than)
        .limit(limit)
    )
    return (await session.exec(stmt)).all()


# -- node executions (the durable node-result log) --------------------------------------------------


async def add_node_execution(session: AsyncSession, row: WorkflowNodeExecution) -> None:
    session.add(row)


async def finish_node_execution(session: AsyncSession, execution_id: str, values: dict[str, Any]) -> bool:
    stmt = update(WorkflowNodeExecution).where(col(WorkflowNodeExecution.id) == execution_id).values(**values)
    return bool((await session.exec(stmt)).rowcount)


async def rerun_paused_execution(session: AsyncSession, execution_id: str, segment: int) -> bool:
    """A paused node re-runs on resume with its execution id (human input): back to ``running``."""
    stmt = (
        update(WorkflowNodeExecution)
        .where(col(WorkflowNodeExecution.id) == execution_id, col(WorkflowNodeExecution.status) == "paused")
        .values(status="running", segment=segment, event=None)
    )
    return bool((await session.exec(stmt)).rowcount)


async def node_executions(
    session: AsyncSession, run_id: str, limit: int | None = None
) -> Sequence[WorkflowNodeExecution]:
    """A run's node executions in ``index`` order; with ``limit``, the newest ``limit`` of them."""
    stmt = select(WorkflowNodeExecution).where(WorkflowNodeExecution.workflow_run_id == run_id)
    if limit is None:
        return (await session.exec(stmt.order_by(col(WorkflowNodeExecution.index)))).all()
    newest = (await session.exec(stmt.order_by(col(WorkflowNodeExecution.index).desc()).limit(limit))).all()
    return list(reversed(newest))


async def count_node_executions(session: AsyncSession, run_id: str) -> int:
    stmt = (
        select(func.count())
        .select_from(WorkflowNodeExecution)
        .where(WorkflowNodeExecution.workflow_run_id == run_id)
    )
    return int((await session.exec(stmt)).one())


async def running_executions(session: AsyncSession, run_id: str) -> Sequence[WorkflowNodeExecution]:
    stmt = select(WorkflowNodeExecution).where(
        WorkflowNodeExecution.workflow_run_id == run_id, WorkflowNodeExecution.status == "running"
    )
    return (await session.exec(stmt.order_by(col(WorkflowNodeExecution.index)))).all()


async def set_execution_status(
    session: AsyncSession, execution_ids: Sequence[str], status: str, error: str | None
) -> None:
    if not execution_ids:
        return
    await session.exec(
        update(WorkflowNodeExecution)
        .where(
            col(WorkflowNodeExecution.id).in_(list(execution_ids)),
            col(WorkflowNodeExecution.status) == "running",
        )
        .values(status=status, error=error, finished_at=utcnow())
    )

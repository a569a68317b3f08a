"""Repositories: every SQL statement of the services lives here. No commits: callers own the
transaction (one ``session.begin()`` per use case)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from sluice.adapters.sql.tables import (
    ApiKey,
    App,
    EndUser,
    Tag,
    TagBinding,
    Tenant,
    Workflow,
    WorkflowAppLog,
    WorkflowNodeExecution,
    WorkflowRun,
)

LIVE_STATUSES = ("running", "paused")


# -- tenants, apps, versions, keys ------------------------------------------------------------------


async def tenant_by_name(session: AsyncSession, name: str) -> Tenant | None:
    return (await session.exec(select(Tenant).where(Tenant.name == name).limit(1))).first()


async def get_tenant(session: AsyncSession, tenant_id: str) -> Tenant | None:
    return await session.get(Tenant, tenant_id)


async def get_app(session: AsyncSession, app_id: str) -> App | None:
    return await session.get(App, app_id)


async def get_workflow(session: AsyncSession, workflow_id: str) -> Workflow | None:
    return await session.get(Workflow, workflow_id)


async def key_by_hash(session: AsyncSession, token_hash: str) -> ApiKey | None:
    return (await session.exec(select(ApiKey).where(ApiKey.token_hash == token_hash))).first()


async def count_keys(session: AsyncSession, app_id: str) -> int:
    stmt = select(func.count()).select_from(ApiKey).where(ApiKey.app_id == app_id)
    return int((await session.exec(stmt)).one())


async def tag_names(session: AsyncSession, app_id: str) -> list[str]:
    stmt = (
        select(Tag.name)
        .join(TagBinding, col(TagBinding.tag_id) == col(Tag.id))
        .where(TagBinding.target_id == app_id)
        .order_by(col(TagBinding.created_at))
    )
    return [str(name) for name in (await session.exec(stmt)).all()]


# -- end users ----------------------------------------------------------------------------------------


async def end_user(session: AsyncSession, app: App, kind: str, session_id: str, anonymous: bool) -> EndUser:
    """Insert-if-absent then select, so concurrent first requests converge on one row."""
    stmt = select(EndUser).where(
        EndUser.app_id == app.id, EndUser.type == kind, EndUser.session_id == session_id
    )
    found = (await session.exec(stmt)).first()
    if found is not None:
        return found
    row = EndUser(
        tenant_id=app.tenant_id, app_id=app.id, type=kind, session_id=session_id, is_anonymous=anonymous
    )
    try:
        async with session.begin_nested():
            session.add(row)
    except IntegrityError:
        return (await session.exec(stmt)).one()
    return row


async def get_end_user(session: AsyncSession, user_id: str) -> EndUser | None:
    return await session.get(EndUser, user_id)


# -- runs ---------------------------------------------------------------------------------------------


async def get_run(session: AsyncSession, run_id: str) -> WorkflowRun | None:
    return await session.get(WorkflowRun, run_id)


async def run_by_task_or_id(session: AsyncSession, task_or_run_id: str) -> WorkflowRun | None:
    stmt = select(WorkflowRun).where(WorkflowRun.task_id == task_or_run_id)
    run = (await session.exec(stmt)).first()
    if run is not None:
        return run
    return await session.get(WorkflowRun, task_or_run_id)


async def count_live_runs(session: AsyncSession, app_id: str) -> int:
    stmt = (
        select(func.count())
        .select_from(WorkflowRun)
        .where(WorkflowRun.app_id == app_id, WorkflowRun.status == "running")
    )
    return int((await session.exec(stmt)).one())


async def finish_run(
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
) -> bool:
    """The one way a run turns terminal: a conditional update; only the winner sees ``True``."""
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
            pending_events=[final_event],
        )
    )
    return bool((await session.exec(stmt)).rowcount)


async def clear_pending(session: AsyncSession, run_id: str) -> None:
    await session.exec(update(WorkflowRun).where(col(WorkflowRun.id) == run_id).values(pending_events=None))


async def request_stop(session: AsyncSession, run_id: str, at: datetime) -> bool:
    stmt = (
        update(WorkflowRun)
        .where(
            col(WorkflowRun.id) == run_id,
            col(WorkflowRun.status) == "running",
            col(WorkflowRun.stop_requested_at).is_(None),
        )
        .values(stop_requested_at=at)
    )
    return bool((await session.exec(stmt)).rowcount)


async def add_node_execution(session: AsyncSession, row: WorkflowNodeExecution) -> None:
    session.add(row)


async def node_executions(session: AsyncSession, run_id: str) -> Sequence[WorkflowNodeExecution]:
    stmt = (
        select(WorkflowNodeExecution)
        .where(WorkflowNodeExecution.workflow_run_id == run_id)
        .order_by(col(WorkflowNodeExecution.index))
    )
    return (await session.exec(stmt)).all()


async def add_app_log(session: AsyncSession, run: WorkflowRun) -> None:
    session.add(
        WorkflowAppLog(
            tenant_id=run.tenant_id,
            app_id=run.app_id,
            workflow_id=run.workflow_id,
            workflow_run_id=run.id,
            created_from=run.created_from,
            created_by_role=run.created_by_role,
            created_by=run.created_by,
            created_at=run.created_at,
        )
    )

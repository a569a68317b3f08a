"""SQL of human input: forms, deliveries, recipients, pauses and the resume outbox (human-input.md §3).

No commits here: callers own the transaction. Every form transition is an ``UPDATE … WHERE
status = 'waiting'`` so concurrent submitters and checkers are harmless: one row changes, once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from sluice.adapters.sql.tables import (
    HumanInputDelivery,
    HumanInputForm,
    HumanInputRecipient,
    WorkflowNodeExecution,
    WorkflowPause,
    WorkflowResumeRequest,
)

# -- forms ------------------------------------------------------------------------------------------


async def form_by_execution(session: AsyncSession, execution_id: str) -> HumanInputForm | None:
    stmt = select(HumanInputForm).where(HumanInputForm.node_execution_id == execution_id)
    return (await session.exec(stmt.execution_options(populate_existing=True))).first()


async def get_form(session: AsyncSession, form_id: str) -> HumanInputForm | None:
    stmt = select(HumanInputForm).where(HumanInputForm.id == form_id)
    return (await session.exec(stmt.execution_options(populate_existing=True))).first()


async def add_form(
    session: AsyncSession,
    form: HumanInputForm,
    deliveries: Sequence[HumanInputDelivery],
    recipients: Sequence[HumanInputRecipient],
) -> None:
    session.add(form)
    await session.flush()
    for row in (*deliveries, *recipients):
        session.add(row)
    await session.flush()


async def token_taken(session: AsyncSession, token: str) -> bool:
    stmt = select(HumanInputRecipient.id).where(HumanInputRecipient.access_token == token)
    return (await session.exec(stmt)).first() is not None


async def by_token(session: AsyncSession, token: str) -> tuple[HumanInputForm, HumanInputRecipient] | None:
    stmt = (
        select(HumanInputForm, HumanInputRecipient)
        .join(HumanInputRecipient, col(HumanInputRecipient.form_id) == col(HumanInputForm.id))
        .where(HumanInputRecipient.access_token == token)
    )
    row = (await session.exec(stmt.execution_options(populate_existing=True))).first()
    return None if row is None else (row[0], row[1])


async def recipients(session: AsyncSession, form_id: str) -> Sequence[HumanInputRecipient]:
    stmt = select(HumanInputRecipient).where(HumanInputRecipient.form_id == form_id)
    return (await session.exec(stmt.order_by(col(HumanInputRecipient.id)))).all()


async def deliveries(session: AsyncSession, form_id: str) -> Sequence[HumanInputDelivery]:
    stmt = select(HumanInputDelivery).where(HumanInputDelivery.form_id == form_id)
    return (await session.exec(stmt)).all()


async def waiting_forms_of_run(session: AsyncSession, run_id: str) -> Sequence[HumanInputForm]:
    stmt = select(HumanInputForm).where(
        HumanInputForm.workflow_run_id == run_id, HumanInputForm.status == "waiting"
    )
    return (await session.exec(stmt.order_by(col(HumanInputForm.created_at)))).all()


async def submit(
    session: AsyncSession,
    form_id: str,
    *,
    action_id: str,
    data: dict[str, Any],
    now: datetime,
    global_seconds: int,
    user_id: str | None,
    end_user_id: str | None,
    recipient_id: str,
) -> bool:
    """The atomic transition of §6.3: ``True`` for the one submission that wins."""
    stmt = update(HumanInputForm).where(
        col(HumanInputForm.id) == form_id,
        col(HumanInputForm.status) == "waiting",
        col(HumanInputForm.submitted_at).is_(None),
        col(HumanInputForm.expiration_time) > now,
    )
    if global_seconds > 0:
        stmt = stmt.where(
            or_(
                col(HumanInputForm.workflow_run_id).is_(None),
                col(HumanInputForm.created_at) > now - timedelta(seconds=global_seconds),
            )
        )
    stmt = stmt.values(
        status="submitted",
        selected_action_id=action_id,
        submitted_data=data,
        submitted_at=now,
        submission_user_id=user_id,
        submission_end_user_id=end_user_id,
        completed_by_recipient_id=recipient_id,
        updated_at=now,
    )
    return bool((await session.exec(stmt)).rowcount)


async def close_form(session: AsyncSession, form_id: str, status: str, reason: str, now: datetime) -> bool:
    """``waiting`` → ``timeout`` | ``expired``; a closed form is never touched again."""
    stmt = (
        update(HumanInputForm)
        .where(col(HumanInputForm.id) == form_id, col(HumanInputForm.status) == "waiting")
        .values(status=status, closed_reason=reason, updated_at=now)
    )
    return bool((await session.exec(stmt)).rowcount)


async def expire_run_forms(session: AsyncSession, run_id: str, reason: str, now: datetime) -> int:
    stmt = (
        update(HumanInputForm)
        .where(col(HumanInputForm.workflow_run_id) == run_id, col(HumanInputForm.status) == "waiting")
        .values(status="expired", closed_reason=reason, updated_at=now)
    )
    return int((await session.exec(stmt)).rowcount or 0)


async def due_forms(
    session: AsyncSession, now: datetime, global_seconds: int, after_id: str, limit: int
) -> Sequence[HumanInputForm]:
    """Waiting forms past their node deadline or the global expiry, paged by ``id`` (§7.1)."""
    due = [col(HumanInputForm.expiration_time) <= now]
    if global_seconds > 0:
        due.append(col(HumanInputForm.created_at) <= now - timedelta(seconds=global_seconds))
    stmt = (
        select(HumanInputForm)
        .where(HumanInputForm.status == "waiting", col(HumanInputForm.id) > after_id, or_(*due))
        .order_by(col(HumanInputForm.id))
        .limit(limit)
    )
    return (await session.exec(stmt.execution_options(populate_existing=True))).all()


# -- resume requests (the outbox of §6.3/§6.4) ------------------------------------------------------


async def add_request(session: AsyncSession, run_id: str, form_id: str, cause: str, now: datetime) -> None:
    session.add(WorkflowResumeRequest(workflow_run_id=run_id, form_id=form_id, cause=cause, created_at=now))
    await session.flush()


async def open_requests(session: AsyncSession, run_id: str) -> Sequence[WorkflowResumeRequest]:
    stmt = select(WorkflowResumeRequest).where(
        WorkflowResumeRequest.workflow_run_id == run_id, col(WorkflowResumeRequest.consumed_at).is_(None)
    )
    return (await session.exec(stmt.order_by(col(WorkflowResumeRequest.created_at)))).all()


async def consume_requests(
    session: AsyncSession, run_id: str, attempt: str, now: datetime, form_ids: Sequence[str] | None = None
) -> int:
    stmt = update(WorkflowResumeRequest).where(
        col(WorkflowResumeRequest.workflow_run_id) == run_id, col(WorkflowResumeRequest.consumed_at).is_(None)
    )
    if form_ids is not None:
        stmt = stmt.where(col(WorkflowResumeRequest.form_id).in_(list(form_ids)))
    stmt = stmt.values(consumed_at=now, consumed_by_attempt=attempt)
    return int((await session.exec(stmt)).rowcount or 0)


async def stale_request_runs(session: AsyncSession, older_than: datetime, limit: int = 100) -> Sequence[str]:
    stmt = (
        select(WorkflowResumeRequest.workflow_run_id)
        .where(
            col(WorkflowResumeRequest.consumed_at).is_(None),
            col(WorkflowResumeRequest.created_at) <= older_than,
        )
        .distinct()
        .limit(limit)
    )
    return (await session.exec(stmt)).all()


# -- pauses -----------------------------------------------------------------------------------------


async def put_pause(
    session: AsyncSession, workflow_id: str, run_id: str, segment: int, reasons: list[Any], now: datetime
) -> None:
    """Replace any previous pause row of the run by this one (§2.3 step 2)."""
    found = (await session.exec(select(WorkflowPause).where(WorkflowPause.workflow_run_id == run_id))).first()
    if found is None:
        session.add(
            WorkflowPause(
                workflow_id=workflow_id,
                workflow_run_id=run_id,
                segment=segment,
                reasons=reasons,
                created_at=now,
            )
        )
    else:
        found.segment, found.reasons, found.created_at = segment, reasons, now
        found.resumed_at = found.closed_reason = None
        session.add(found)
    await session.flush()


async def get_pause(session: AsyncSession, run_id: str) -> WorkflowPause | None:
    stmt = select(WorkflowPause).where(WorkflowPause.workflow_run_id == run_id)
    return (await session.exec(stmt.execution_options(populate_existing=True))).first()


async def close_pause(session: AsyncSession, run_id: str, reason: str, now: datetime) -> None:
    await session.exec(
        update(WorkflowPause)
        .where(col(WorkflowPause.workflow_run_id) == run_id, col(WorkflowPause.closed_reason).is_(None))
        .values(closed_reason=reason, resumed_at=now if reason == "resumed" else None)
    )


async def stop_paused_executions(session: AsyncSession, run_id: str, error: str, now: datetime) -> None:
    await session.exec(
        update(WorkflowNodeExecution)
        .where(
            col(WorkflowNodeExecution.workflow_run_id) == run_id,
            col(WorkflowNodeExecution.status) == "paused",
        )
        .values(status="stopped", error=error, finished_at=now)
    )

"""Queries behind ``GET /v1/workflows/logs`` (service-api §5.5)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, String, cast, func, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from sluice.adapters.sql.tables import Account, EndUser, WorkflowAppLog, WorkflowRun


@dataclass(frozen=True, slots=True)
class LogFilter:
    app_id: str
    keyword: str | None = None
    status: str | None = None
    created_before: datetime | None = None
    created_after: datetime | None = None
    end_user_session_id: str | None = None
    account_id: str | None = None


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _conditions(f: LogFilter, run_id_keyword: bool) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [col(WorkflowAppLog.app_id) == f.app_id]
    if f.status:
        where.append(col(WorkflowRun.status) == f.status)
    if f.created_before:
        where.append(col(WorkflowAppLog.created_at) <= f.created_before)
    if f.created_after:
        where.append(col(WorkflowAppLog.created_at) >= f.created_after)
    if f.end_user_session_id is not None:
        where.append(col(EndUser.session_id) == f.end_user_session_id)
    if f.account_id is not None:
        where.append(col(WorkflowAppLog.created_by_role) == "account")
        where.append(col(WorkflowAppLog.created_by) == f.account_id)
    if f.keyword:
        pattern = f"%{_escape_like(f.keyword.lower())}%"
        matches: list[ColumnElement[bool]] = [
            func.lower(cast(WorkflowRun.inputs, String)).like(pattern, escape="\\"),
            func.lower(cast(WorkflowRun.outputs, String)).like(pattern, escape="\\"),
            func.lower(col(EndUser.session_id)).like(pattern, escape="\\"),
        ]
        if run_id_keyword:
            matches.append(col(WorkflowRun.id) == f.keyword.lower())
        where.append(or_(*matches))
    return where


async def page(
    session: AsyncSession, f: LogFilter, page_number: int, limit: int, run_id_keyword: bool
) -> tuple[int, list[tuple[WorkflowAppLog, WorkflowRun, EndUser | None, Account | None]]]:
    joined = (
        select(WorkflowAppLog, WorkflowRun, EndUser, Account)
        .join(WorkflowRun, col(WorkflowRun.id) == col(WorkflowAppLog.workflow_run_id))
        .outerjoin(
            EndUser,
            (col(WorkflowAppLog.created_by_role) == "end_user")
            & (col(EndUser.id) == col(WorkflowAppLog.created_by)),
        )
        .outerjoin(
            Account,
            (col(WorkflowAppLog.created_by_role) == "account")
            & (col(Account.id) == col(WorkflowAppLog.created_by)),
        )
    )
    where = _conditions(f, run_id_keyword)
    counted = select(func.count()).select_from(joined.where(*where).subquery())
    total = int((await session.exec(counted)).one())
    rows = await session.exec(
        joined.where(*where)
        .order_by(col(WorkflowAppLog.created_at).desc(), col(WorkflowAppLog.id).desc())
        .offset((page_number - 1) * limit)
        .limit(limit)
    )
    return total, list(rows.all())


async def account_by_email(session: AsyncSession, email: str) -> Account | None:
    return (
        await session.exec(select(Account).where(func.lower(col(Account.email)) == email.lower()))
    ).first()

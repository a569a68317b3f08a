"""``GET /v1/workflows/logs``: the app's run logs, filtered and paginated (service-api §5.5)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from sluice.adapters.sql import logs_repo
from sluice.adapters.sql.tables import Account, EndUser, WorkflowAppLog, WorkflowRun
from sluice.runtime.dify_events import epoch
from sluice.services.apps import AppAuth
from sluice.services.errors import InvalidParam

MAX_LIMIT = 100


class LogQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    keyword: str | None = None
    status: Literal["succeeded", "failed", "stopped", "partial-succeeded"] | None = None
    created_at__before: datetime | None = None
    created_at__after: datetime | None = None
    created_by_end_user_session_id: str | None = None
    created_by_account: str | None = None
    page: int = Field(1, ge=1, le=99999)
    limit: int = Field(20, ge=1)


def _naive(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _item(
    log: WorkflowAppLog, run: WorkflowRun, user: EndUser | None, account: Account | None
) -> dict[str, Any]:
    return {
        "id": log.id,
        "workflow_run": {
            "id": run.id,
            "version": run.version,
            "status": run.status,
            "triggered_from": run.triggered_from,
            "error": run.error,
            "elapsed_time": run.elapsed_time,
            "total_tokens": run.total_tokens,
            "total_steps": run.total_steps,
            "created_at": epoch(run.created_at),
            "finished_at": epoch(run.finished_at),
            "exceptions_count": run.exceptions_count,
        },
        "details": None,
        "created_from": log.created_from,
        "created_by_role": log.created_by_role,
        "created_by_account": (
            {"id": account.id, "name": account.name, "email": account.email} if account is not None else None
        ),
        "created_by_end_user": (
            {
                "id": user.id,
                "type": user.type,
                "is_anonymous": user.is_anonymous,
                "session_id": user.session_id,
            }
            if user is not None
            else None
        ),
        "created_at": epoch(log.created_at),
    }


class LogService:
    def __init__(self, db: async_sessionmaker[AsyncSession]) -> None:
        self._db = db

    async def page(self, auth: AppAuth, query: LogQuery) -> dict[str, Any]:
        limit = min(query.limit, MAX_LIMIT)
        keyword = query.keyword[:30] if query.keyword else None
        async with self._db() as session:
            account_id = None
            if query.created_by_account is not None:
                account = await logs_repo.account_by_email(session, query.created_by_account)
                if account is None:
                    raise InvalidParam(f"Account not found: {query.created_by_account}")
                account_id = account.id
            flt = logs_repo.LogFilter(
                app_id=auth.app.id,
                keyword=keyword,
                status=query.status,
                created_before=_naive(query.created_at__before),
                created_after=_naive(query.created_at__after),
                end_user_session_id=query.created_by_end_user_session_id,
                account_id=account_id,
            )
            total, rows = await logs_repo.page(
                session, flt, query.page, limit, bool(keyword and _is_uuid(keyword))
            )
        return {
            "page": query.page,
            "limit": limit,
            "total": total,
            "has_more": query.page * limit < total,
            "data": [_item(*row) for row in rows],
        }

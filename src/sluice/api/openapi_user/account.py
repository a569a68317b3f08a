"""``/_health``, ``/account``, ``/account/sessions`` and ``/workspaces`` (openapi-user.md §8.1–8.7)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from sluice.api.openapi_user.common import reject_unknown_query
from sluice.api.openapi_user.deps import FullDep, UserApiDep, WorkspaceReadDep, account_limit
from sluice.api.openapi_user.schemas import (
    AccountResponse,
    ErrorBody,
    HealthResponse,
    RevokeResponse,
    SessionListResponse,
    WorkspaceDetailResponse,
    WorkspaceListResponse,
)
from sluice.services.oauth import ACCOUNT_ISSUER
from sluice.services.user_apps import is_uuid, plain_iso
from sluice.services.user_errors import not_found

router = APIRouter()
MAX_PAGE = 99999  # beyond it the offset is meaningless (and overflows SQL integers)


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorBody} for status in (*statuses, 500)}


AUTH_ERRORS = errors(401, 403, 429)


def zulu(value: datetime | None) -> str | None:
    return None if value is None else value.replace(microsecond=0).isoformat() + "Z"


@router.get(
    "/_health", operation_id="get_health", tags=["health"], response_model=HealthResponse, responses=errors()
)
async def get_health() -> HealthResponse:
    return HealthResponse(ok=True)


@router.get(
    "/account",
    operation_id="get_account",
    tags=["account"],
    response_model=AccountResponse,
    responses=AUTH_ERRORS,
    dependencies=[Depends(account_limit)],
)
async def get_account(ctx: FullDep, api: UserApiDep) -> dict[str, Any]:
    rows = await api.accounts.memberships(ctx.account.id)
    account = ctx.account
    return {
        "subject_type": "account",
        "subject_email": account.email,
        "subject_issuer": None if ctx.token.subject_issuer == ACCOUNT_ISSUER else ctx.token.subject_issuer,
        "account": {"id": account.id, "email": account.email, "name": account.name},
        "workspaces": [{"id": t.id, "name": t.name, "role": j.role} for j, t in rows],
        "default_workspace_id": api.accounts.default_workspace(rows),
    }


@router.get(
    "/account/sessions",
    operation_id="list_account_sessions",
    tags=["account"],
    response_model=SessionListResponse,
    responses=errors(401, 403, 422, 429),
)
async def list_account_sessions(
    request: Request,
    ctx: FullDep,
    api: UserApiDep,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    limit: Annotated[int, Query(ge=1, le=200)] = 100,
) -> dict[str, Any]:
    reject_unknown_query(request, ("page", "limit"))
    rows, total = await api.tokens.sessions(ctx, page, limit)
    data = [
        {
            "id": r.id,
            "prefix": r.prefix,
            "client_id": r.client_id,
            "device_label": r.device_label,
            "created_at": zulu(r.created_at),
            "last_used_at": zulu(r.last_used_at),
            "expires_at": zulu(r.expires_at),
        }
        for r in rows
    ]
    return {"page": page, "limit": limit, "total": total, "has_more": page * limit < total, "data": data}


@router.delete(
    "/account/sessions/self",
    operation_id="revoke_current_session",
    tags=["account"],
    response_model=RevokeResponse,
    responses=AUTH_ERRORS,
)
async def revoke_current_session(ctx: FullDep, api: UserApiDep) -> RevokeResponse:
    await api.tokens.revoke_current(ctx)
    return RevokeResponse(status="revoked")


@router.delete(
    "/account/sessions/{session_id}",
    operation_id="revoke_account_session",
    tags=["account"],
    response_model=RevokeResponse,
    responses=errors(401, 403, 404, 429),
)
async def revoke_account_session(session_id: str, ctx: FullDep, api: UserApiDep) -> RevokeResponse:
    await api.tokens.revoke(ctx, session_id)
    return RevokeResponse(status="revoked")


@router.get(
    "/workspaces",
    operation_id="list_workspaces",
    tags=["workspaces"],
    response_model=WorkspaceListResponse,
    responses=AUTH_ERRORS,
)
async def list_workspaces(ctx: WorkspaceReadDep, api: UserApiDep) -> dict[str, Any]:
    rows = await api.accounts.memberships(ctx.account.id)
    return {
        "workspaces": [
            {"id": t.id, "name": t.name, "role": j.role, "status": t.status, "current": j.current}
            for j, t in rows
        ]
    }


@router.get(
    "/workspaces/{workspace_id}",
    operation_id="get_workspace",
    tags=["workspaces"],
    response_model=WorkspaceDetailResponse,
    responses=errors(401, 403, 404, 429),
)
async def get_workspace(workspace_id: str, ctx: WorkspaceReadDep, api: UserApiDep) -> dict[str, Any]:
    found = await api.accounts.membership(ctx.account.id, workspace_id) if is_uuid(workspace_id) else None
    if found is None:
        raise not_found("workspace not found")
    join, tenant = found
    return {
        "id": tenant.id,
        "name": tenant.name,
        "role": join.role,
        "status": tenant.status,
        "current": join.current,
        "created_at": plain_iso(tenant.created_at),
    }

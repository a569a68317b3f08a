"""``/console/api``: a minimal console — JSON login (the same session as the pages), the
signed-in account, apps of its workspaces, imports, API keys, the ``enable_api`` switch and runs.

Mutations need the session's CSRF token in ``X-CSRF-Token``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from sluice.api.console.schemas import (
    ApiEnableRequest,
    ApiEnableResponse,
    ApiKeyResponse,
    AppImportRequest,
    AppImportResponse,
    ConsoleAppList,
    ConsoleLoginRequest,
    ConsoleResult,
    ConsoleRunPage,
    ConsoleSessionResponse,
)
from sluice.api.console.session import (
    clear_session_cookie,
    require_csrf,
    require_session,
    set_session_cookie,
    user_api,
)
from sluice.api.openapi_user.common import body_ref, client_ip, read_model
from sluice.api.openapi_user.schemas import ErrorBody
from sluice.services.accounts import ConsoleContext
from sluice.services.console import run_row
from sluice.services.user_api import UserApi
from sluice.services.user_apps import plain_iso

router = APIRouter(tags=["console"])
MAX_PAGE = 99999
SessionDep = Annotated[ConsoleContext, Depends(require_session)]


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorBody} for status in (*statuses, 500)}


async def csrf(request: Request, ctx: SessionDep) -> ConsoleContext:
    require_csrf(request, ctx)
    return ctx


WriteDep = Annotated[ConsoleContext, Depends(csrf)]


async def session_body(api: UserApi, ctx: ConsoleContext) -> dict[str, Any]:
    rows = await api.accounts.memberships(ctx.account.id)
    account = ctx.account
    current = api.accounts.default_workspace(rows, ctx.session.current_tenant_id)
    return {
        "account": {"id": account.id, "email": account.email, "name": account.name},
        "workspaces": [
            {"id": t.id, "name": t.name, "role": j.role, "status": t.status, "current": t.id == current}
            for j, t in rows
        ],
        "current_workspace_id": current,
        "csrf_token": ctx.session.csrf_token,
    }


@router.post(
    "/login",
    operation_id="console_login",
    response_model=ConsoleSessionResponse,
    responses=errors(400, 401, 415, 429),
    openapi_extra=body_ref(ConsoleLoginRequest),
)
async def console_login(request: Request) -> JSONResponse:
    api = user_api(request)
    body = await read_model(request, ConsoleLoginRequest, status=400)
    ip = client_ip(request, api.settings.openapi.split(api.settings.openapi.trusted_proxies))
    new = await api.accounts.login(body.email, body.password, ip)
    response = JSONResponse(await session_body(api, new.context))
    set_session_cookie(request, response, new.cookie)
    return response


@router.post(
    "/logout", operation_id="console_logout", response_model=ConsoleResult, responses=errors(401, 403)
)
async def console_logout(request: Request, ctx: WriteDep) -> JSONResponse:
    await user_api(request).accounts.logout(ctx)
    response = JSONResponse({"result": "success"})
    clear_session_cookie(response)
    return response


@router.get(
    "/session", operation_id="console_session", response_model=ConsoleSessionResponse, responses=errors(401)
)
async def console_session(request: Request, ctx: SessionDep) -> dict[str, Any]:
    return await session_body(user_api(request), ctx)


@router.get(
    "/apps", operation_id="console_list_apps", response_model=ConsoleAppList, responses=errors(401, 404)
)
async def console_list_apps(
    request: Request, ctx: SessionDep, workspace_id: Annotated[str | None, Query()] = None
) -> dict[str, Any]:
    api = user_api(request)
    tenant_id = workspace_id or ctx.session.current_tenant_id
    apps = await api.console.apps(ctx.account.id, tenant_id)
    return {
        "data": [
            {
                "id": a.id,
                "name": a.name,
                "mode": a.mode,
                "description": a.description or "",
                "enable_api": a.enable_api,
                "workspace_id": a.tenant_id,
                "published_workflow_id": a.workflow_id,
                "created_at": plain_iso(a.created_at),
            }
            for a in apps
        ]
    }


@router.post(
    "/apps/imports",
    operation_id="console_import_app",
    status_code=201,
    response_model=AppImportResponse,
    responses=errors(400, 401, 403, 404, 415),
    openapi_extra=body_ref(AppImportRequest),
)
async def console_import_app(request: Request, ctx: WriteDep) -> dict[str, Any]:
    body = await read_model(request, AppImportRequest, status=400)
    api = user_api(request)
    tenant_id = body.workspace_id or ctx.session.current_tenant_id
    outcome = await api.console.import_app(ctx.account.id, tenant_id, body.yaml_content)
    return {
        "app_id": outcome.app_id,
        "workflow_id": outcome.workflow_id,
        "status": outcome.status,
        "warnings": outcome.findings,
    }


@router.post(
    "/apps/{app_id}/api-keys",
    operation_id="console_create_api_key",
    status_code=201,
    response_model=ApiKeyResponse,
    responses=errors(400, 401, 403, 404),
)
async def console_create_api_key(app_id: str, request: Request, ctx: WriteDep) -> dict[str, Any]:
    token = await user_api(request).console.create_key(ctx.account.id, app_id)
    return {"token": token, "app_id": app_id}


@router.post(
    "/apps/{app_id}/api-enable",
    operation_id="console_set_api_enabled",
    response_model=ApiEnableResponse,
    responses=errors(400, 401, 403, 404, 415),
    openapi_extra=body_ref(ApiEnableRequest),
)
async def console_set_api_enabled(app_id: str, request: Request, ctx: WriteDep) -> dict[str, Any]:
    body = await read_model(request, ApiEnableRequest, status=400)
    enabled = await user_api(request).console.set_api(ctx.account.id, app_id, body.enable_api)
    return {"enable_api": enabled}


@router.get(
    "/apps/{app_id}/workflow-runs",
    operation_id="console_list_runs",
    response_model=ConsoleRunPage,
    responses=errors(401, 404, 422),
)
async def console_list_runs(
    app_id: str,
    request: Request,
    ctx: SessionDep,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> dict[str, Any]:
    runs, total = await user_api(request).console.runs(ctx.account.id, app_id, page, limit)
    return {
        "page": page,
        "limit": limit,
        "total": total,
        "has_more": page * limit < total,
        "data": [run_row(r) for r in runs],
    }

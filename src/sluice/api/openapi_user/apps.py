"""``/apps``: list, describe, run (always SSE), task events and stop, and the enterprise-only
``/permitted-external-apps`` (openapi-user.md §8.8–8.14). Human-input form routes (§8.13) belong
to the human-input feature and are not registered here."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from sluice.adapters.sql.tables import Tenant
from sluice.api.deps import ContainerDep, RunsDep, StreamsDep
from sluice.api.openapi_user.account import errors
from sluice.api.openapi_user.common import body_ref, read_model, reject_unknown_query
from sluice.api.openapi_user.deps import AppReadDep, AppRunDep, AppsReadDep, UserApiDep
from sluice.api.openapi_user.schemas import (
    AppDescribeResponse,
    AppListResponse,
    AppMode,
    AppRunRequest,
    PermittedExternalAppsListResponse,
)
from sluice.api.service.events import resume_cursor
from sluice.api.service.schemas import SimpleResultResponse
from sluice.api.sse import SSEResponse, sse_response
from sluice.engine.inputs import InputError
from sluice.services.apps import AppAuth
from sluice.services.errors import AppModeMismatch, InvalidParam
from sluice.services.user_apps import DESCRIBE_FIELDS, is_uuid
from sluice.services.user_errors import UserApiError, invalid, not_found

router = APIRouter(tags=["apps"])
audit = logging.getLogger("sluice.audit")
SSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Server-Sent Events",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
}
RUNNABLE = ("workflow", "advanced-chat")
MAX_PAGE = 99999


async def member_workspace(request: Request, ctx: AppsReadDep, api: UserApiDep) -> Tenant:
    """Step 9 for ``GET /apps``: membership through ``?workspace_id``, ahead of validation."""
    _, tenant = await api.apps.workspace(ctx.account.id, request.query_params.get("workspace_id"))
    return tenant


@router.get(
    "/apps",
    operation_id="list_apps",
    response_model=AppListResponse,
    responses=errors(401, 403, 404, 422, 429),
)
async def list_apps(
    tenant: Annotated[Tenant, Depends(member_workspace)],
    api: UserApiDep,
    workspace_id: Annotated[str, Query()],
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
    mode: Annotated[AppMode | None, Query()] = None,
    name: Annotated[str | None, Query(max_length=200)] = None,
    tag: Annotated[str | None, Query(max_length=100)] = None,
) -> dict[str, Any]:
    return await api.apps.list_apps(
        tenant, page=page, limit=limit, mode=mode.value if mode else None, name=name, tag=tag
    )


def parse_fields(raw: list[str] | None) -> list[str]:
    members = [part.strip() for item in raw or [] for part in item.split(",")]
    members = [m for m in members if m]
    unknown = [m for m in members if m not in DESCRIBE_FIELDS]
    if unknown:
        detail = {"type": "value_error", "loc": ["fields"], "msg": f"unknown field(s): {unknown}"}
        raise invalid("Request validation failed", [detail])
    return members


@router.get(
    "/apps/{app_id}/describe",
    operation_id="describe_app",
    response_model=AppDescribeResponse,
    responses=errors(401, 403, 404, 409, 422, 429),
)
async def describe_app(
    app_id: str,
    request: Request,
    auth: AppReadDep,
    api: UserApiDep,
    fields: Annotated[list[str] | None, Query()] = None,
    workspace_id: Annotated[str | None, Query()] = None,
) -> dict[str, Any]:
    reject_unknown_query(request, ("fields", "workspace_id"))
    return await api.apps.describe(auth[1], parse_fields(fields))


def _chat_checks(body: AppRunRequest, mode: str) -> None:
    if mode == "advanced-chat":
        if body.query is None or not body.query.strip():
            raise invalid("query_required_for_chat")
    elif body.query is not None:
        raise invalid("query_not_supported_for_workflow")
    if body.conversation_id is not None:
        conversation = body.conversation_id.strip() or None
        if conversation is not None and not is_uuid(conversation):
            raise invalid("conversation_id must be a valid UUID")


@router.post(
    "/apps/{app_id}/run",
    operation_id="run_app",
    response_class=SSEResponse,
    responses={**SSE, **errors(400, 401, 403, 404, 409, 415, 422, 429, 503)},
    openapi_extra=body_ref(AppRunRequest),
)
async def run_app(
    app_id: str,
    request: Request,
    auth: AppRunDep,
    api: UserApiDep,
    runs: RunsDep,
    streams: StreamsDep,
    c: ContainerDep,
) -> Response:
    ctx, access = auth
    body = await read_model(request, AppRunRequest)
    app = access.app
    if app.mode not in RUNNABLE:
        raise invalid("mode_not_runnable")
    _chat_checks(body, app.mode)
    if body.workspace_id is not None and body.workspace_id != access.tenant.id:
        raise invalid("workspace_id does not match app's workspace")
    await api.apps.published_version(app, body.workflow_id)
    try:
        started = await runs.start(
            AppAuth(app, access.tenant),
            ctx.account.id,
            body.inputs,
            created_from="openapi",
            account_id=ctx.account.id,
        )
    except InvalidParam as exc:
        cause = exc.__cause__
        if isinstance(cause, InputError):
            detail = {"type": "value_error", "loc": ["inputs", cause.variable], "msg": exc.message}
            raise UserApiError(400, "invalid_param", exc.message, details=[detail]) from exc
        raise
    except AppModeMismatch as exc:  # advanced-chat has no runner in this build yet
        raise UserApiError(
            422, "mode_not_runnable", "mode_not_runnable", hint="advanced-chat runs are not available yet"
        ) from exc
    audit.info(
        "app.run.openapi", extra={"run_id": started.run_id, "account_id": ctx.account.id, "app_id": app.id}
    )
    st = c.settings.streaming
    return sse_response(
        streams, started.run_id, started.task_id, retry_ms=st.sse_retry_ms, emit_ids=st.sse_emit_event_ids
    )


@router.get(
    "/apps/{app_id}/tasks/{task_id}/events",
    operation_id="get_app_task_events",
    response_class=SSEResponse,
    responses={**SSE, **errors(400, 401, 403, 404, 422, 429, 503)},
)
async def get_app_task_events(
    app_id: str,
    task_id: str,
    request: Request,
    auth: AppRunDep,
    runs: RunsDep,
    streams: StreamsDep,
    cursor: Annotated[str | None, Query()] = None,
    last_event_id: Annotated[str | None, Query()] = None,
    include_state_snapshot: Annotated[bool, Query()] = False,
    continue_on_pause: Annotated[bool, Query()] = False,
) -> Response:
    """Reconnect per streaming.md §3, for the caller's own runs of this app."""
    ctx, access = auth
    if access.app.mode not in RUNNABLE:
        raise UserApiError(422, "unprocessable_entity", "mode_not_supported_for_event_reconnect")
    after = resume_cursor(request.headers.get("last-event-id"), cursor, last_event_id)
    run = await runs.find_for_user(AppAuth(access.app, access.tenant), task_id, "", account_id=ctx.account.id)
    if run is None:
        raise not_found("Workflow run not found")
    stream = streams.open(
        run.id,
        run.task_id,
        after=after,
        run=run,
        snapshot=include_state_snapshot,
        continue_on_pause=continue_on_pause,
    )
    return SSEResponse(stream)


@router.post(
    "/apps/{app_id}/tasks/{task_id}/stop",
    operation_id="stop_app_task",
    response_model=SimpleResultResponse,
    responses=errors(401, 403, 404, 422, 429),
)
async def stop_app_task(app_id: str, task_id: str, auth: AppRunDep, runs: RunsDep) -> SimpleResultResponse:
    ctx, access = auth
    await runs.stop(AppAuth(access.app, access.tenant), task_id, "", account_id=ctx.account.id)
    return SimpleResultResponse()


async def _not_found_first() -> None:
    raise not_found("Not Found")


@router.get(
    "/permitted-external-apps",
    operation_id="list_permitted_external_apps",
    response_model=PermittedExternalAppsListResponse,
    responses=errors(401, 403, 404, 422, 429),
    dependencies=[Depends(_not_found_first)],
)
async def list_permitted_external_apps() -> dict[str, Any]:
    raise not_found("Not Found")  # pragma: no cover - the route gate answers first

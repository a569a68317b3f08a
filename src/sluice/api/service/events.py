"""``GET /v1/workflow/{task_id}/events`` (Dify's reconnect route) and its alias next to stop.

Everything is decided before the first byte (streaming spec §3.1): ``user``, the app mode, the
cursor (``Last-Event-ID`` header, else ``cursor``, else ``last_event_id``), the run's owner.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header

from sluice.api.deps import AppAuthDep, RunsDep, StreamsDep
from sluice.api.service.schemas import ServiceApiError
from sluice.api.sse import MEDIA_TYPE, SSEResponse
from sluice.runtime import offsets
from sluice.services.errors import AppModeMismatch, BadRequest, InvalidParam, NotFound

router = APIRouter(tags=["workflows"])
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ServiceApiError} for status in (400, 401, 403, 404, 500, 503)
}
STREAM: dict[int | str, dict[str, Any]] = {
    200: {"content": {MEDIA_TYPE: {"schema": {"type": "string"}}}, "description": "Event stream"}
}
CURSOR_ERROR = "event cursor must be a Redis Stream ID such as '1712345678901-0'"
EVENT_MODES = ("workflow", "advanced-chat")


def resume_cursor(header: str | None, cursor: str | None, last_event_id: str | None) -> str | None:
    """The client's offset: the header wins, then ``cursor`` (Dify's name), then ``last_event_id``."""
    for value in (header, cursor, last_event_id):
        if value:
            if not offsets.valid(value):
                raise BadRequest(CURSOR_ERROR)
            return value
    return None


async def _events(
    task_id: str,
    auth: AppAuthDep,
    runs: RunsDep,
    streams: StreamsDep,
    user: str | None,
    cursor: str | None,
    last_event_id: str | None,
    include_state_snapshot: bool,
    continue_on_pause: bool,
    header: str | None,
) -> SSEResponse:
    if not user:
        raise InvalidParam("Arg user must be provided.")
    if len(user) > 255:
        raise InvalidParam("Arg user is too long (max 255 characters).")
    if auth.app.mode not in EVENT_MODES:
        raise AppModeMismatch()
    after = resume_cursor(header, cursor, last_event_id)
    run = await runs.find_for_user(auth, task_id, user)
    if run is None:
        raise NotFound("Workflow run not found")
    stream = streams.open(
        run.id,
        run.task_id,
        after=after,
        run=run,
        snapshot=include_state_snapshot,
        continue_on_pause=continue_on_pause,
    )
    return SSEResponse(stream)


@router.get(
    "/workflow/{task_id}/events",
    operation_id="get_workflow_events",
    response_class=SSEResponse,
    responses={**STREAM, **ERRORS},
)
async def get_workflow_events(
    task_id: str,
    auth: AppAuthDep,
    runs: RunsDep,
    streams: StreamsDep,
    user: str | None = None,
    cursor: str | None = None,
    last_event_id: str | None = None,
    include_state_snapshot: bool = False,
    continue_on_pause: bool = False,
    last_event_id_header: Annotated[
        str | None, Header(alias="Last-Event-ID", include_in_schema=False)
    ] = None,
) -> SSEResponse:
    """Reconnect to a run's event stream: replay after the given offset, then follow it live."""
    return await _events(
        task_id,
        auth,
        runs,
        streams,
        user,
        cursor,
        last_event_id,
        include_state_snapshot,
        continue_on_pause,
        last_event_id_header,
    )


@router.get(
    "/workflows/tasks/{task_id}/events",
    operation_id="get_workflow_task_events",
    response_class=SSEResponse,
    include_in_schema=False,
)
async def get_workflow_task_events(
    task_id: str,
    auth: AppAuthDep,
    runs: RunsDep,
    streams: StreamsDep,
    user: str | None = None,
    cursor: str | None = None,
    last_event_id: str | None = None,
    include_state_snapshot: bool = False,
    continue_on_pause: bool = False,
    last_event_id_header: Annotated[
        str | None, Header(alias="Last-Event-ID", include_in_schema=False)
    ] = None,
) -> SSEResponse:
    return await _events(
        task_id,
        auth,
        runs,
        streams,
        user,
        cursor,
        last_event_id,
        include_state_snapshot,
        continue_on_pause,
        last_event_id_header,
    )

"""``/v1/workflows/*``: run (blocking or streaming), run detail, stop."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from sluice.api.body import end_user_arg, json_object, validate
from sluice.api.deps import AppAuthDep, ContainerDep, RunsDep, StreamsDep
from sluice.api.service.schemas import (
    ServiceApiError,
    SimpleResultResponse,
    TaskStopRequest,
    WorkflowBlockingResponse,
    WorkflowRunDetail,
    WorkflowRunRequest,
)
from sluice.api.sse import sse_response
from sluice.runtime.dify_events import epoch
from sluice.services.errors import AppModeMismatch

router = APIRouter(tags=["workflows"])
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ServiceApiError} for status in (400, 401, 403, 404, 415, 429, 500, 503)
}
RUN_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/WorkflowRunRequest"}}},
    }
}


@router.post(
    "/workflows/run",
    operation_id="run_workflow",
    response_model=WorkflowBlockingResponse,
    responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}}, **ERRORS},
    openapi_extra=RUN_BODY,
)
async def run_workflow(
    request: Request, auth: AppAuthDep, runs: RunsDep, streams: StreamsDep, c: ContainerDep
) -> Response:
    body = await json_object(request)
    user = end_user_arg(body)
    assert user is not None
    if auth.app.mode != "workflow":
        raise AppModeMismatch()
    req = validate(WorkflowRunRequest, body)
    started = await runs.start(auth, user, req.inputs, files=body.get("files") if req.files else None)
    st = c.settings.streaming
    if req.response_mode == "streaming":
        return sse_response(
            streams, started.run_id, started.task_id, retry_ms=st.sse_retry_ms, emit_ids=st.sse_emit_event_ids
        )
    final = await streams.wait_terminal(started.run_id, st.blocking_max_wait_seconds)
    if final is None:
        data: dict[str, Any] = {
            "id": started.run_id,
            "workflow_id": started.facts.workflow_id,
            "status": "running",
            "outputs": {},
            "error": None,
            "elapsed_time": 0,
            "total_tokens": 0,
            "total_steps": 0,
            "created_at": epoch(started.facts.created_at),
            "finished_at": None,
        }
    else:
        data = {
            k: final["data"].get(k)
            for k in (
                "id",
                "workflow_id",
                "status",
                "outputs",
                "error",
                "elapsed_time",
                "total_tokens",
                "total_steps",
                "created_at",
                "finished_at",
            )
        }
    body_out = {"task_id": started.task_id, "workflow_run_id": started.run_id, "data": data}
    return JSONResponse(body_out, headers={"X-Workflow-Run-ID": started.run_id, "X-Task-ID": started.task_id})


@router.get(
    "/workflows/run/{workflow_run_id}",
    operation_id="get_workflow_run_detail",
    response_model=WorkflowRunDetail,
    responses=ERRORS,
)
async def get_workflow_run_detail(workflow_run_id: str, auth: AppAuthDep, runs: RunsDep) -> WorkflowRunDetail:
    run = await runs.get(auth, workflow_run_id)
    return WorkflowRunDetail(
        id=run.id,
        workflow_id=run.workflow_id,
        status=run.status,
        inputs=json.dumps(run.inputs or {}, ensure_ascii=False),
        outputs=run.outputs or {},
        error=run.error,
        total_steps=run.total_steps,
        total_tokens=run.total_tokens,
        created_at=epoch(run.created_at) or 0,
        finished_at=epoch(run.finished_at),
        elapsed_time=run.elapsed_time,
    )


@router.post(
    "/workflows/tasks/{task_id}/stop",
    operation_id="stop_workflow_task",
    response_model=SimpleResultResponse,
    responses=ERRORS,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TaskStopRequest"}}},
        }
    },
)
async def stop_workflow_task(
    task_id: str, request: Request, auth: AppAuthDep, runs: RunsDep
) -> SimpleResultResponse:
    body = await json_object(request)
    user = end_user_arg(body)
    assert user is not None
    if auth.app.mode != "workflow":
        raise AppModeMismatch()
    validate(TaskStopRequest, body)
    await runs.stop(auth, task_id, user)
    return SimpleResultResponse()

"""``GET /v1/workflows/logs``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from sluice.api.deps import AppAuthDep, ContainerDep
from sluice.api.service.schemas import ServiceApiError, WorkflowLogPage
from sluice.services.errors import AppModeMismatch
from sluice.services.logs import LogQuery, LogService

router = APIRouter(tags=["workflows"])
ERRORS: dict[int | str, dict[str, Any]] = {s: {"model": ServiceApiError} for s in (400, 401, 403, 500)}


def log_service(c: ContainerDep) -> LogService:
    return LogService(c.db)


@router.get(
    "/workflows/logs", operation_id="get_workflow_logs", response_model=WorkflowLogPage, responses=ERRORS
)
async def get_workflow_logs(
    auth: AppAuthDep,
    query: Annotated[LogQuery, Query()],
    logs: Annotated[LogService, Depends(log_service)],
) -> dict[str, Any]:
    if auth.app.mode not in ("workflow", "advanced-chat"):
        raise AppModeMismatch()
    return await logs.page(auth, query)

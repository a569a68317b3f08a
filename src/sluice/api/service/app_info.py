"""``/v1/info`` and ``/v1/parameters``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from sluice.api.deps import AppAuthDep, ContainerDep
from sluice.api.service.schemas import AppInfoResponse, AppParametersResponse, ServiceApiError
from sluice.services.errors import AppUnavailable
from sluice.services.parameters import app_parameters

router = APIRouter(tags=["app"])
ERRORS: dict[int | str, dict[str, Any]] = {s: {"model": ServiceApiError} for s in (400, 401, 403, 500)}


@router.get("/info", operation_id="get_app_info", response_model=AppInfoResponse, responses=ERRORS)
async def get_app_info(auth: AppAuthDep, c: ContainerDep, user: str | None = None) -> AppInfoResponse:
    app = auth.app
    return AppInfoResponse(
        name=app.name,
        description=app.description or "",
        tags=await c.apps.tags(app.id),
        mode=app.mode,
        author_name=None,
    )


@router.get(
    "/parameters", operation_id="get_app_parameters", response_model=AppParametersResponse, responses=ERRORS
)
async def get_app_parameters(auth: AppAuthDep, c: ContainerDep, user: str | None = None) -> dict[str, Any]:
    workflow = await c.apps.published(auth.app)
    if workflow is None:
        raise AppUnavailable()
    graph = c.graphs.get(workflow)
    return app_parameters(workflow.features or {}, graph.start_variables, c.settings.api)

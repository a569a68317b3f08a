"""O1/O2 (human-input.md §5): ``/openapi/v1/apps/{app_id}/form/human_input/{form_token}`` (and Dify's
newer ``human-input-forms`` spelling), bearer with ``apps:run``. Only web tokens of the path's app;
another recipient type of the same app is 403 ``recipient_surface_mismatch``, anything else 404."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from sluice.api.body import json_object
from sluice.api.deps import ContainerDep
from sluice.api.openapi_user.deps import AppRunDep
from sluice.services.errors import ServiceUnavailable
from sluice.services.forms import (
    FormNotFound,
    FormService,
    InvalidFormData,
    RecipientSurfaceMismatch,
    Submitter,
)
from sluice.services.user_errors import UserApiError

router = APIRouter(tags=["human-input"])
NOT_FOUND = "No human-input form matches this token. It may be wrong, expired, or already submitted."


def service(c: ContainerDep) -> FormService:
    if c.forms is None:
        raise ServiceUnavailable("Forms are not available in this process.")
    return c.forms


def translate(exc: Exception) -> Exception:
    """The OpenAPI wording of the shared form errors (§5.3)."""
    if isinstance(exc, FormNotFound):
        return UserApiError(404, "form_not_found", NOT_FOUND)
    if isinstance(exc, RecipientSurfaceMismatch):
        return UserApiError(403, exc.code, exc.message, hint=exc.hint)
    if isinstance(exc, InvalidFormData):
        return UserApiError(400, exc.code, exc.message, details=exc.details)
    return exc


async def _view(app_id: str, form_token: str, c: ContainerDep) -> dict[str, Any]:
    try:
        return await service(c).view(form_token, "openapi", app_id=app_id)
    except (FormNotFound, RecipientSurfaceMismatch) as exc:
        raise translate(exc) from exc


async def _submit(app_id: str, form_token: str, request: Request, auth: AppRunDep, c: ContainerDep) -> None:
    ctx, _ = auth
    body = await json_object(request)
    try:
        await service(c).submit(
            form_token,
            body.get("action"),
            body.get("inputs"),
            "openapi",
            Submitter(user_id=ctx.account.id),
            app_id=app_id,
        )
    except (FormNotFound, RecipientSurfaceMismatch, InvalidFormData) as exc:
        raise translate(exc) from exc


@router.get("/apps/{app_id}/form/human_input/{form_token}", operation_id="get_app_human_input_form")
async def get_form(app_id: str, form_token: str, auth: AppRunDep, c: ContainerDep) -> dict[str, Any]:
    return await _view(app_id, form_token, c)


@router.post("/apps/{app_id}/form/human_input/{form_token}", operation_id="submit_app_human_input_form")
async def submit_form(
    app_id: str, form_token: str, request: Request, auth: AppRunDep, c: ContainerDep
) -> dict[str, Any]:
    await _submit(app_id, form_token, request, auth, c)
    return {}


@router.get("/apps/{app_id}/human-input-forms/{form_token}", operation_id="get_app_human_input_form_v2")
async def get_form_v2(app_id: str, form_token: str, auth: AppRunDep, c: ContainerDep) -> dict[str, Any]:
    return await _view(app_id, form_token, c)


@router.post(
    "/apps/{app_id}/human-input-forms/{form_token}:submit", operation_id="submit_app_human_input_form_v2"
)
async def submit_form_v2(
    app_id: str, form_token: str, request: Request, auth: AppRunDep, c: ContainerDep
) -> dict[str, Any]:
    await _submit(app_id, form_token, request, auth, c)
    return {}

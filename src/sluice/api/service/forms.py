"""Service API form routes S1/S2 (human-input.md §5): ``/v1/form/human_input/{form_token}``, app
key auth, only ``standalone_web_app`` tokens of the key's app (others: 404, as Dify)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from sluice.api.body import json_object
from sluice.api.deps import AppAuthDep, ContainerDep
from sluice.services.errors import InvalidParam, ServiceUnavailable
from sluice.services.forms import FormService, Submitter

router = APIRouter(tags=["human-input"])


def form_service(c: ContainerDep) -> FormService:
    if c.forms is None:
        raise ServiceUnavailable("Forms are not available in this process.")
    return c.forms


@router.get("/form/human_input/{form_token}", operation_id="get_human_input_form")
async def get_form(
    form_token: str, auth: AppAuthDep, forms: FormService = Depends(form_service)
) -> dict[str, Any]:
    return await forms.view(form_token, "service_api", app_id=auth.app.id)


@router.post("/form/human_input/{form_token}", operation_id="submit_human_input_form")
async def submit_form(
    form_token: str, request: Request, auth: AppAuthDep, forms: FormService = Depends(form_service)
) -> dict[str, Any]:
    body = await json_object(request)
    user = body.get("user")
    if not isinstance(user, str) or not user:
        raise InvalidParam("Arg user must be provided.")
    await forms.find(form_token, "service_api", app_id=auth.app.id)
    end_user = await forms.end_user_id(auth, user)
    await forms.submit(
        form_token,
        body.get("action"),
        body.get("inputs"),
        "service_api",
        Submitter(end_user_id=end_user),
        app_id=auth.app.id,
    )
    return {}

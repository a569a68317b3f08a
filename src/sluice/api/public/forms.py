"""P1/P2 (human-input.md §5): ``GET``/``POST /api/form/human_input/{form_token}``. No auth but the
token, any recipient type, per-IP rate limits (separate GET and POST counters, 429 with
``Retry-After``); ``invalid_form_data`` carries every problem as ``details`` here."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from sluice.api.body import json_object
from sluice.api.deps import ContainerDep
from sluice.services.errors import DomainError, ServiceUnavailable
from sluice.services.forms import FormService, InvalidFormData, Submitter
from sluice.services.ratelimit import RateLimiter

router = APIRouter(tags=["human-input"])
RATE_LIMITED = "Too many form requests. Please try again later."


class FormRateLimited(DomainError):
    status = 429
    code = "web_form_rate_limit_exceeded"
    message = RATE_LIMITED


def error(exc: DomainError) -> JSONResponse:
    body: dict[str, Any] = {"code": exc.code, "message": exc.message, "status": exc.status}
    if isinstance(exc, InvalidFormData):
        body["details"] = exc.details
    return JSONResponse(body, status_code=exc.status, headers=exc.headers or None)


async def limit(request: Request, c: ContainerDep, counter: str) -> None:
    """Per-IP sliding window (``WEB_FORM_SUBMIT_RATE_LIMIT_*``); the page shares these counters."""
    limiter: RateLimiter | None = getattr(getattr(request.app.state, "user_api", None), "limiter", None)
    hi = c.settings.human_input
    if limiter is None or hi.web_form_submit_rate_limit_max_attempts <= 0:
        return
    ip = request.client.host if request.client else "unknown"
    decision = await limiter.hit(
        f"hitl-{counter}",
        ip,
        hi.web_form_submit_rate_limit_max_attempts,
        hi.web_form_submit_rate_limit_window_seconds,
        time.time(),
    )
    if not decision.allowed:
        raise FormRateLimited(headers={"Retry-After": str(max(1, decision.retry_after))})


def service(c: ContainerDep) -> FormService:
    if c.forms is None:
        raise ServiceUnavailable("Forms are not available in this process.")
    return c.forms


def site(app_id: str, name: str) -> dict[str, Any]:
    return {
        "app_id": app_id,
        "end_user_id": None,
        "enable_site": True,
        "site": {"title": name, "default_language": "en-US", "description": None, "copyright": None},
        "model_config": None,
        "plan": "basic",
        "can_replace_logo": False,
        "custom_config": None,
    }


@router.get(
    "/api/form/human_input/{form_token}", operation_id="get_public_human_input_form", include_in_schema=False
)
async def get_form(form_token: str, request: Request, c: ContainerDep) -> Any:
    try:
        await limit(request, c, "get")
        forms = service(c)
        found = await forms.find(form_token, None)
        body = await forms.view(form_token, None)
        body["site"] = site(found.form.app_id, await forms.app_name(found.form.app_id))
        return body
    except DomainError as exc:
        return error(exc)


@router.post(
    "/api/form/human_input/{form_token}",
    operation_id="submit_public_human_input_form",
    include_in_schema=False,
)
async def submit_form(form_token: str, request: Request, c: ContainerDep) -> Any:
    try:
        await limit(request, c, "post")
        body = await json_object(request)
        await service(c).submit(form_token, body.get("action"), body.get("inputs"), None, Submitter())
        return {}
    except DomainError as exc:
        return error(exc)

"""``/oauth/device/*``: the device authorization flow's public and console-session routes (§6)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from sluice.api.console.session import require_csrf, require_session
from sluice.api.openapi_user.common import body_ref, client_ip, read_model
from sluice.api.openapi_user.deps import UserApiDep
from sluice.api.openapi_user.schemas import (
    DeviceCodeRequest,
    DeviceCodeResponse,
    DeviceLookupResponse,
    DeviceMutateRequest,
    DeviceMutateResponse,
    DevicePollRequest,
    DeviceTokenResponse,
    ErrorBody,
    OAuthErrorBody,
)
from sluice.services.user_api import UserApi
from sluice.services.user_errors import UserApiError

router = APIRouter(prefix="/oauth/device", tags=["oauth-device"])
ERROR = {"$ref": "#/components/schemas/ErrorBody"}
OAUTH = {"$ref": "#/components/schemas/OAuthErrorBody"}


def answers(**kinds: str) -> dict[int | str, dict[str, Any]]:
    """Per status: ``error`` (canonical), ``oauth`` (``{"error"}``) or ``either``."""
    out: dict[int | str, dict[str, Any]] = {}
    for key, kind in kinds.items():
        status = int(key.lstrip("s"))
        if kind == "error":
            out[status] = {"model": ErrorBody}
        elif kind == "oauth":
            out[status] = {"model": OAuthErrorBody}
        else:
            schema = {"anyOf": [OAUTH, ERROR]}
            out[status] = {"content": {"application/json": {"schema": schema}}, "description": "Error"}
    return out


def ip_of(request: Request, api: UserApi) -> str:
    return client_ip(request, api.settings.openapi.split(api.settings.openapi.trusted_proxies))


def verification_uri(request: Request, api: UserApi) -> str:
    base = api.settings.openapi.console_web_url.rstrip("/") or str(request.base_url).rstrip("/")
    return base + "/device"


@router.post(
    "/code",
    operation_id="create_device_code",
    response_model=DeviceCodeResponse,
    responses=answers(s400="either", s415="error", s429="error", s500="error", s503="either"),
    openapi_extra=body_ref(DeviceCodeRequest),
)
async def create_device_code(request: Request, api: UserApiDep) -> dict[str, Any]:
    ip = ip_of(request, api)
    await api.devices.limit_code_requests(ip)
    body = await read_model(request, DeviceCodeRequest, status=400)
    return await api.devices.create(body.client_id, body.device_label, ip, verification_uri(request, api))


@router.get(
    "/lookup",
    operation_id="lookup_device_code",
    response_model=DeviceLookupResponse,
    responses=answers(s400="error", s429="error", s500="error"),
)
async def lookup_device_code(
    request: Request, api: UserApiDep, user_code: Annotated[str | None, Query()] = None
) -> dict[str, Any]:
    await api.devices.limit_lookups(ip_of(request, api))
    if user_code is None or not user_code.strip():
        raise UserApiError(400, "bad_request", "user_code required")
    return await api.devices.lookup(user_code)


@router.post(
    "/token",
    operation_id="poll_device_token",
    response_model=DeviceTokenResponse,
    responses=answers(s400="either", s415="error", s500="error"),
    openapi_extra=body_ref(DevicePollRequest),
)
async def poll_device_token(request: Request, api: UserApiDep) -> JSONResponse:
    body = await read_model(request, DevicePollRequest, status=400)
    answer = await api.devices.poll(body.device_code, ip_of(request, api))
    return JSONResponse(answer, headers={"Cache-Control": "no-store"})


async def _decide(request: Request, api: UserApi, approve: bool) -> dict[str, str]:
    ctx = await require_session(request)
    require_csrf(request, ctx)
    await api.devices.limit_decisions(ctx)
    body = await read_model(request, DeviceMutateRequest, status=400)
    return {"status": await api.devices.decide(ctx, body.user_code, approve)}


DECISION_ERRORS = answers(
    s400="error",
    s401="error",
    s403="error",
    s404="oauth",
    s409="oauth",
    s415="error",
    s429="error",
    s500="error",
)


@router.post(
    "/approve",
    operation_id="approve_device_code",
    response_model=DeviceMutateResponse,
    responses=DECISION_ERRORS,
    openapi_extra=body_ref(DeviceMutateRequest),
)
async def approve_device_code(request: Request, api: UserApiDep) -> dict[str, str]:
    return await _decide(request, api, approve=True)


@router.post(
    "/deny",
    operation_id="deny_device_code",
    response_model=DeviceMutateResponse,
    responses=DECISION_ERRORS,
    openapi_extra=body_ref(DeviceMutateRequest),
)
async def deny_device_code(request: Request, api: UserApiDep) -> dict[str, str]:
    return await _decide(request, api, approve=False)

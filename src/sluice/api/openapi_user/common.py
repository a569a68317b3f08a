"""Request helpers shared by the user API, the console API and the pages: JSON bodies read after
authentication (so auth outcomes come first), strict query strings, and the client's IP."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from sluice.api.errors import INVALID_JSON
from sluice.services.user_errors import UserApiError, reduce_errors, request_invalid

M = TypeVar("M", bound=BaseModel)
MAX_JSON_BYTES = 10 * 1024 * 1024


def body_ref(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` declaring a JSON body the handler reads itself."""
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": ref}}}}


async def read_model(request: Request, model: type[M], *, status: int = 422) -> M:
    """Parse the JSON body into ``model``: unparseable or empty → 400, shape → ``status`` + details."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if (
        media
        and media != "application/json"
        and not (media.startswith("application/") and media.endswith("+json"))
    ):
        raise UserApiError(
            415,
            "unsupported_media_type",
            "Did not attempt to load JSON data because the request Content-Type was not 'application/json'.",
        )
    raw = bytearray()
    async for chunk in request.stream():
        raw.extend(chunk)
        if len(raw) > MAX_JSON_BYTES:
            raise UserApiError(413, "request_entity_too_large", "The request body is too large.")
    try:
        data = json.loads(raw) if raw.strip() else None
    except (ValueError, UnicodeDecodeError):
        data = None
    if data is None:
        raise UserApiError(400, "bad_request", INVALID_JSON)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise request_invalid(reduce_errors(list(exc.errors())), status) from exc


def reject_unknown_query(request: Request, allowed: Iterable[str]) -> None:
    """Strict routes: any query parameter not declared → 422 with its name as ``loc``."""
    known = set(allowed)
    extra = [key for key in request.query_params if key not in known]
    if extra:
        details = [
            {"type": "extra_forbidden", "loc": [key], "msg": "Extra inputs are not permitted"}
            for key in extra
        ]
        raise request_invalid(details)


def client_ip(request: Request, trusted_proxies: Iterable[str]) -> str:
    """The socket peer; behind a trusted proxy, ``CF-Connecting-IP`` else the first ``X-Forwarded-For``."""
    peer = request.client.host if request.client else ""
    if peer and peer in set(trusted_proxies):
        forwarded = request.headers.get("cf-connecting-ip") or request.headers.get("x-forwarded-for", "")
        candidate = forwarded.split(",", 1)[0].strip()
        try:
            return str(ipaddress.ip_address(candidate))
        except ValueError:
            return peer
    return peer

"""Reading JSON bodies the way Dify clients expect, in the spec's check order."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from sluice.api.errors import INVALID_JSON, validation_message
from sluice.services.errors import BadRequest, DomainError, InvalidParam

M = TypeVar("M", bound=BaseModel)
MAX_JSON_BYTES = 10 * 1024 * 1024


class UnsupportedMediaType(DomainError):
    status = 415
    code = "unsupported_media_type"
    message = "Did not attempt to load JSON data because the request Content-Type was not 'application/json'."


class BodyTooLarge(DomainError):
    status = 413
    code = "request_entity_too_large"
    message = "The data value transmitted exceeds the capacity limit."


def _is_json_type(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return (
        not media
        or media == "application/json"
        or (media.startswith("application/") and media.endswith("+json"))
    )


async def json_object(request: Request) -> dict[str, Any]:
    if not _is_json_type(request.headers.get("content-type", "")):
        raise UnsupportedMediaType()
    raw = bytearray()
    async for chunk in request.stream():
        raw.extend(chunk)
        if len(raw) > MAX_JSON_BYTES:
            raise BodyTooLarge()
    if not raw.strip():
        raise BadRequest(INVALID_JSON)
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(INVALID_JSON) from exc
    if not isinstance(body, dict):
        raise InvalidParam("Request body must be a JSON object.")
    return body


def end_user_arg(body: dict[str, Any], *, required: bool = True) -> str | None:
    """The ``user`` field per service-api §3 (an integer becomes its decimal string)."""
    user = body.get("user")
    if user is None or user == "":
        if required:
            raise InvalidParam("Arg user must be provided.")
        return None
    if isinstance(user, int) and not isinstance(user, bool):
        user = str(user)
    if not isinstance(user, str):
        raise InvalidParam("Arg user must be a string.")
    if len(user) > 255:
        raise InvalidParam("Arg user is too long (max 255 characters).")
    body["user"] = user
    return user


def validate(model: type[M], body: dict[str, Any]) -> M:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise InvalidParam(validation_message(list(exc.errors()))) from exc

"""The error renderer: typed domain errors and framework errors → ``{code, message, status}``.

FastAPI's default 422 body never appears: validation problems become 400 ``invalid_param`` with
``<field>: <reason>``, unknown paths 404, wrong methods 405, anything unexpected a logged 500
whose body never carries exception text.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from sluice.services.errors import DomainError

log = logging.getLogger("sluice.api")

STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "request_entity_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
    500: "internal_server_error",
    502: "bad_gateway",
    503: "service_unavailable",
}
NOT_FOUND = (
    "The requested URL was not found on the server. If you entered the URL manually please check your "
    "spelling and try again."
)
METHOD_NOT_ALLOWED = "The method is not allowed for the requested URL."
INTERNAL = (
    "The server encountered an internal error and was unable to complete your request. Either the server "
    "is overloaded or there is an error in the application."
)
INVALID_JSON = "Invalid JSON payload received or JSON payload is empty."


def error_response(
    status: int, code: str | None, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {"code": code or STATUS_CODES.get(status, "error"), "message": message, "status": status}
    if status == 401:
        headers = {"WWW-Authenticate": 'Bearer realm="api"', **(headers or {})}
    return JSONResponse(body, status_code=status, headers=headers)


def validation_message(errors: list[Any]) -> str:
    """``<dotted field>: <reason>`` for the first error, without the body/query/path root."""
    first = errors[0]
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path", "header")]
    field = ".".join(loc)
    return f"{field}: {first.get('msg', 'invalid')}" if field else str(first.get("msg", "invalid"))


def validation_error(errors: list[Any]) -> JSONResponse:
    first = errors[0] if errors else {}
    if first.get("type") == "json_invalid" or (
        first.get("type") == "missing" and tuple(first.get("loc", ())) == ("body",)
    ):
        return error_response(400, "bad_request", INVALID_JSON)
    return error_response(400, "invalid_param", validation_message(errors))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _request_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_error(list(exc.errors()))

    @app.exception_handler(ValidationError)
    async def _validation(request: Request, exc: ValidationError) -> JSONResponse:
        return validation_error(list(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return error_response(404, "not_found", NOT_FOUND)
        if exc.status_code == 405:
            return error_response(405, "method_not_allowed", METHOD_NOT_ALLOWED)
        message = exc.detail if isinstance(exc.detail, str) else STATUS_CODES.get(exc.status_code, "error")
        return error_response(exc.status_code, None, message, dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        request_id = uuid.uuid4().hex
        log.exception("unhandled error (request %s) on %s %s", request_id, request.method, request.url.path)
        return error_response(500, "internal_server_error", INTERNAL, {"X-Request-ID": request_id})

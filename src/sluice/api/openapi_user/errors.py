"""One error renderer for the user API, the console API and the pages' JSON answers.

The app-wide handlers (``sluice.api.errors``) render the Service API's body. ``install_scoped_errors``
wraps them: requests under the given prefixes get the canonical body of openapi-user.md §4
(``{code, message, status, hint?, details?}``; every 5xx says ``Internal Server Error``), device
protocol answers get ``{"error": …}``, and every other path keeps the original handler.
"""

from __future__ import annotations

import inspect
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from sluice.api.errors import STATUS_CODES
from sluice.services.errors import DomainError
from sluice.services.user_errors import REQUEST_INVALID, OAuthProtocolError, UserApiError, reduce_errors

log = logging.getLogger("sluice.api")
INTERNAL = "Internal Server Error"
DEVICE_PREFIX = "/openapi/v1/oauth/device/"
HTTP_MESSAGES = {404: "Not Found", 405: "Method Not Allowed"}
Handler = Callable[[Request, Any], Response | Awaitable[Response]]


def canonical(
    status: int,
    code: str | None,
    message: str,
    *,
    hint: str | None = None,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "code": code or STATUS_CODES.get(status, "error"),
        "message": INTERNAL if status >= 500 else message,
        "status": status,
    }
    if hint:
        body["hint"] = hint
    if details:
        body["details"] = details
    return JSONResponse(body, status_code=status, headers=headers)


def oauth_error(exc: OAuthProtocolError) -> JSONResponse:
    return JSONResponse({"error": exc.error}, status_code=exc.status, headers={"Cache-Control": "no-store"})


def render(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, OAuthProtocolError):
        return oauth_error(exc)
    if isinstance(exc, UserApiError):
        return canonical(
            exc.status, exc.code, exc.message, hint=exc.hint, details=exc.details, headers=exc.headers
        )
    if isinstance(exc, DomainError):
        return canonical(exc.status, exc.code, exc.message, headers=exc.headers)
    if isinstance(exc, RequestValidationError | ValidationError):
        details = reduce_errors(list(exc.errors()))
        status = 400 if request.url.path.startswith(DEVICE_PREFIX) else 422
        return canonical(
            status, "invalid_param" if status == 422 else "bad_request", REQUEST_INVALID, details=details
        )
    if isinstance(exc, StarletteHTTPException):
        message = HTTP_MESSAGES.get(exc.status_code) or (exc.detail if isinstance(exc.detail, str) else "")
        return canonical(exc.status_code, None, message, headers=dict(exc.headers or {}))
    request_id = uuid.uuid4().hex
    log.exception(
        "unhandled error (request %s) on %s %s", request_id, request.method, request.url.path, exc_info=exc
    )
    return canonical(500, "internal_server_error", INTERNAL, headers={"X-Request-ID": request_id})


def install_scoped_errors(app: FastAPI, prefixes: tuple[str, ...]) -> None:
    """Route errors under ``prefixes`` to ``render``; keep the existing handlers elsewhere."""
    for cls in (DomainError, RequestValidationError, ValidationError, StarletteHTTPException, Exception):
        original = app.exception_handlers.get(cls)
        app.add_exception_handler(cls, _dispatch(prefixes, original))

    async def _oauth(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, OAuthProtocolError)
        return oauth_error(exc)

    app.add_exception_handler(OAuthProtocolError, _oauth)


def _dispatch(prefixes: tuple[str, ...], original: Handler | None) -> Handler:
    async def handler(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith(prefixes) or original is None:
            return render(request, exc)
        answer = original(request, exc)
        return await answer if inspect.isawaitable(answer) else answer

    return handler

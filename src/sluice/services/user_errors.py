"""Errors of the user API (openapi-user.md §4): the canonical body's extras and device-protocol answers.

``UserApiError`` adds ``hint`` and ``details`` to a domain error; ``OAuthProtocolError`` is rendered
as ``{"error": "<code>"}`` only (RFC 8628 style). Statuses are decided here, rendered in one place.
"""

from __future__ import annotations

from typing import Any

from sluice.services.errors import DomainError

REQUEST_INVALID = "Request validation failed"


class UserApiError(DomainError):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        hint: str | None = None,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message, code=code, headers=headers)
        self.status = status
        self.hint = hint
        self.details = details


def unauthorized(message: str) -> UserApiError:
    return UserApiError(401, "unauthorized", message)


def not_found(message: str) -> UserApiError:
    return UserApiError(404, "not_found", message)


def forbidden(message: str) -> UserApiError:
    return UserApiError(403, "forbidden", message)


def invalid(message: str, details: list[dict[str, Any]] | None = None, status: int = 422) -> UserApiError:
    return UserApiError(status, "invalid_param", message, details=details)


def request_invalid(details: list[dict[str, Any]], status: int = 422) -> UserApiError:
    """Body or query shape failures: 422 on most routes, 400 on the device routes."""
    code = "invalid_param" if status == 422 else "bad_request"
    return UserApiError(status, code, REQUEST_INVALID, details=details)


def reduce_errors(errors: list[Any]) -> list[dict[str, Any]]:
    """pydantic errors reduced to ``{type, loc, msg}`` with the body/query/path root removed."""
    out = []
    for error in errors:
        loc = list(error.get("loc", ()))
        if loc and loc[0] in ("body", "query", "path", "header"):
            loc = loc[1:]
        out.append(
            {"type": str(error.get("type", "value_error")), "loc": loc, "msg": str(error.get("msg", ""))}
        )
    return out


class OAuthProtocolError(Exception):
    """A device-protocol answer: ``{"error": code}`` with its status."""

    def __init__(self, status: int, error: str) -> None:
        super().__init__(error)
        self.status = status
        self.error = error

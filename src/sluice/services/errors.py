"""Typed domain errors. Each carries its HTTP status and code; the API's one error renderer per
surface turns them into that surface's body, so status decisions live here and nowhere else."""

from __future__ import annotations


class DomainError(Exception):
    status = 400
    code = "bad_request"
    message = "Bad request."

    def __init__(
        self, message: str | None = None, *, code: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        self.message = message if message is not None else type(self).message
        if code is not None:
            self.code = code
        self.headers = headers or {}
        super().__init__(self.message)


class BadRequest(DomainError):
    pass


class InvalidParam(DomainError):
    code = "invalid_param"


class Unauthorized(DomainError):
    status = 401
    code = "unauthorized"
    message = "Access token is invalid"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"


class NotFound(DomainError):
    status = 404
    code = "not_found"
    message = "Not found."


class AppModeMismatch(DomainError):
    code = "not_workflow_app"
    message = "Please check if your app mode matches the right API route."


class AppUnavailable(DomainError):
    code = "app_unavailable"
    message = "App unavailable, please check your app configurations."


class TooManyRequests(DomainError):
    status = 429
    code = "too_many_requests"


class ServiceUnavailable(DomainError):
    status = 503
    code = "service_unavailable"
    message = "Service unavailable."


class DslInvalid(DomainError):
    """An import that failed validation; ``findings`` lists every problem."""

    code = "invalid_dsl"

    def __init__(self, findings: list[dict[str, object]]) -> None:
        first = findings[0]["message"] if findings else "Invalid DSL"
        super().__init__(str(first))
        self.findings = findings

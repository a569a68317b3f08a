"""The console session as a request sees it: cookie, CSRF and origin checks (openapi-user.md §7).

Shared by the console API, the device approve/deny routes and the server-rendered pages.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import Request, Response

from sluice.services.accounts import AccountService, ConsoleContext
from sluice.services.user_api import UserApi
from sluice.services.user_errors import forbidden, unauthorized

SESSION_COOKIE = "sluice_session"
LOGIN_CSRF_COOKIE = "sluice_login_csrf"


def user_api(request: Request) -> UserApi:
    return request.app.state.user_api  # type: ignore[no-any-return]


async def current(request: Request) -> ConsoleContext | None:
    return await user_api(request).accounts.session(request.cookies.get(SESSION_COOKIE))


async def require_session(request: Request) -> ConsoleContext:
    ctx = await current(request)
    if ctx is None:
        raise unauthorized("console session required")
    return ctx


def console_origin(request: Request) -> str:
    """``CONSOLE_WEB_URL``'s origin, else the request's own."""
    configured = user_api(request).settings.openapi.console_web_url.rstrip("/")
    base = configured or str(request.base_url).rstrip("/")
    parts = urlsplit(base)
    return f"{parts.scheme}://{parts.netloc}"


def csrf_ok(request: Request, ctx: ConsoleContext, presented: str | None, *, page: bool = False) -> bool:
    """The session's token (constant-time) and, when sent, an ``Origin`` equal to the console's.

    Pages send ``Referrer-Policy: no-referrer``, under which browsers post their forms with
    ``Origin: null``; for page forms that value counts as absent (the token still decides)."""
    origin = request.headers.get("origin")
    if page and origin == "null":
        origin = None
    if origin is not None and origin.rstrip("/") != console_origin(request):
        return False
    return AccountService.csrf_ok(ctx, presented)


def require_csrf(request: Request, ctx: ConsoleContext) -> None:
    if not csrf_ok(request, ctx, request.headers.get("x-csrf-token")):
        raise forbidden("csrf_mismatch")


def set_session_cookie(request: Request, response: Response, cookie: str) -> None:
    hours = user_api(request).settings.openapi.console_session_ttl_hours
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        max_age=hours * 3600,
        path="/",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")

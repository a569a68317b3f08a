"""``/login``, ``/logout`` and ``/device``: server-rendered pages that work without JavaScript.

Sign-in uses a double-submit CSRF token (``sluice_login_csrf`` cookie + hidden field); the device
page posts the session's CSRF token in a hidden field and shares the approve/deny rules (and the
rate-limit bucket) of ``/openapi/v1/oauth/device/{approve,deny}``. Excluded from the OpenAPI doc.
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from sluice.api.console.session import (
    LOGIN_CSRF_COOKIE,
    clear_session_cookie,
    csrf_ok,
    current,
    set_session_cookie,
    user_api,
)
from sluice.api.openapi_user.common import client_ip
from sluice.services.accounts import ConsoleContext, same
from sluice.services.ratelimit import RateLimited
from sluice.services.user_errors import OAuthProtocolError, UserApiError

login_router = APIRouter(include_in_schema=False)
device_router = APIRouter(include_in_schema=False)
templates = Environment(loader=PackageLoader("sluice.api.pages", "templates"), autoescape=select_autoescape())
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
}
OUTCOMES = {
    "approved": (200, "Device authorized. You can return to your terminal."),
    "denied": (200, "Request denied."),
    "invalid": (404, "This code is invalid or has expired."),
    "resolved": (409, "This request was already handled."),
    "limited": (429, "Too many attempts. Try again later."),
    "error": (403, "This request could not be verified. Reload the page and try again."),
}


def page(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    html = templates.get_template(name).render(**context)
    return HTMLResponse(html, status_code=status, headers=dict(PAGE_HEADERS))


def local_path(target: str | None) -> str:
    """``next`` only when it is a local path (starts with ``/``, not ``//``)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/device"


async def form_fields(request: Request) -> dict[str, str]:
    raw = (await request.body())[:65536].decode("utf-8", errors="replace")
    return {key: values[0] for key, values in parse_qs(raw, keep_blank_values=True).items()}


@login_router.get("/_pages/style.css")
async def stylesheet() -> Response:
    css = templates.loader.get_source(templates, "style.css")[0]  # type: ignore[union-attr]
    return Response(css, media_type="text/css", headers={"Cache-Control": "max-age=3600"})


def login_page(
    request: Request, next_path: str, status: int = 200, error: str | None = None, email: str = ""
) -> Response:
    token = secrets.token_urlsafe(32)
    response = page(
        "login.html", status, title="Sign in", next=next_path, login_csrf=token, error=error, email=email
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        path="/",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return response


@login_router.get("/login")
async def login_form(request: Request, next: str | None = None) -> Response:
    return login_page(request, local_path(next))


@login_router.post("/login")
async def login_submit(request: Request) -> Response:
    fields = await form_fields(request)
    next_path = local_path(fields.get("next"))
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not same(expected, fields.get("csrf_token", "")):
        return login_page(request, next_path, 403, "Your sign-in form expired. Please try again.")
    api = user_api(request)
    ip = client_ip(request, api.settings.openapi.split(api.settings.openapi.trusted_proxies))
    email = fields.get("email", "")
    try:
        new = await api.accounts.login(email, fields.get("password", ""), ip)
    except RateLimited as exc:
        response = login_page(request, next_path, 429, "Too many failed sign-ins. Try again later.", email)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    except UserApiError:
        return login_page(request, next_path, 401, "Invalid email or password.", email)
    response = RedirectResponse(next_path, status_code=303, headers=dict(PAGE_HEADERS))
    set_session_cookie(request, response, new.cookie)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return response


@login_router.post("/logout")
async def logout(request: Request) -> Response:
    ctx = await current(request)
    fields = await form_fields(request)
    if ctx is not None and csrf_ok(request, ctx, fields.get("csrf_token"), page=True):
        await user_api(request).accounts.logout(ctx)
    response = RedirectResponse("/login", status_code=303, headers=dict(PAGE_HEADERS))
    clear_session_cookie(response)
    return response


async def workspace_name(request: Request, ctx: ConsoleContext) -> str | None:
    api = user_api(request)
    rows = await api.accounts.memberships(ctx.account.id)
    chosen = api.accounts.default_workspace(rows, ctx.session.current_tenant_id)
    return next((t.name for _, t in rows if t.id == chosen), None)


def device_page(ctx: ConsoleContext, status: int = 200, **context: Any) -> HTMLResponse:
    return page(
        "device.html",
        status,
        title="Device sign-in",
        account=ctx.account,
        csrf_token=ctx.session.csrf_token,
        **context,
    )


@device_router.get("/device")
async def device_form(request: Request, user_code: str | None = None) -> Response:
    ctx = await current(request)
    if ctx is None:
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(
            f"/login?next={quote(here, safe='')}", status_code=303, headers=dict(PAGE_HEADERS)
        )
    if not user_code:
        return device_page(ctx, user_code="")
    pending = await user_api(request).devices.pending(user_code)
    if pending is None:
        return device_page(ctx, error="This code is invalid or has expired.", user_code=user_code)
    return device_page(ctx, pending=pending, workspace=await workspace_name(request, ctx))


def outcome(ctx: ConsoleContext, result: str, headers: dict[str, str] | None = None) -> HTMLResponse:
    status, message = OUTCOMES[result]
    response = device_page(ctx, status, result=result, message=message)
    response.headers.update(headers or {})
    return response


@device_router.post("/device")
async def device_decide(request: Request) -> Response:
    ctx = await current(request)
    if ctx is None:
        return RedirectResponse("/login?next=%2Fdevice", status_code=303, headers=dict(PAGE_HEADERS))
    fields = await form_fields(request)
    if not csrf_ok(request, ctx, fields.get("csrf_token"), page=True):
        return outcome(ctx, "error")
    api = user_api(request)
    try:
        await api.devices.limit_decisions(ctx)
    except RateLimited as exc:
        return outcome(ctx, "limited", {"Retry-After": str(exc.retry_after)})
    action = fields.get("action")
    if action not in ("approve", "deny"):
        return outcome(ctx, "error")
    try:
        status = await api.devices.decide(ctx, fields.get("user_code", ""), approve=action == "approve")
    except OAuthProtocolError as exc:
        return outcome(ctx, "resolved" if exc.status == 409 else "invalid")
    return outcome(ctx, status)

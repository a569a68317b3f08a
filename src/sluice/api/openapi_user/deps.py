"""Dependencies of the user API: the services, and the authorization pipeline (openapi-user.md §3).

Each dependency reads raw request values (header, path, query) rather than typed parameters, so
authentication and authorization outcomes precede request validation. ``bearer`` is cached per
request by FastAPI, so the per-token limit counts a request once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request

from sluice.services.accounts import now_pair
from sluice.services.oauth import BearerContext, has_scope
from sluice.services.ratelimit import enforce
from sluice.services.user_api import UserApi
from sluice.services.user_apps import AppAccess
from sluice.services.user_errors import forbidden

ACCOUNT_LIMIT = ("account", 60, 60.0)


def user_api(request: Request) -> UserApi:
    return request.app.state.user_api  # type: ignore[no-any-return]


UserApiDep = Annotated[UserApi, Depends(user_api)]


async def bearer(request: Request) -> BearerContext:
    """Steps 1–5: a live ``dfoa_`` token of an active account."""
    return await user_api(request).tokens.authenticate(request.headers.get("authorization"))


def require(scope: str) -> Callable[..., Awaitable[BearerContext]]:
    """Step 11 for routes without an app."""

    async def dependency(ctx: Annotated[BearerContext, Depends(bearer)]) -> BearerContext:
        if not has_scope(ctx.scopes, scope):
            raise forbidden("insufficient_scope")
        return ctx

    return dependency


def require_app(scope: str) -> Callable[..., Awaitable[tuple[BearerContext, AppAccess]]]:
    """App routes: steps 6–10 on the path's ``app_id`` and ``?workspace_id``, then the scope."""

    async def dependency(
        request: Request, ctx: Annotated[BearerContext, Depends(bearer)]
    ) -> tuple[BearerContext, AppAccess]:
        access = await user_api(request).apps.resolve(
            ctx.account.id,
            str(request.path_params.get("app_id", "")),
            request.query_params.get("workspace_id"),
        )
        if not has_scope(ctx.scopes, scope):
            raise forbidden("insufficient_scope")
        return ctx, access

    return dependency


async def account_limit(request: Request, ctx: Annotated[BearerContext, Depends(bearer)]) -> Any:
    """``GET /account`` has its own 60/min per account on top of the per-token limit."""
    api = user_api(request)
    name, limit, window = ACCOUNT_LIMIT
    epoch, _ = now_pair(api.clock)
    await enforce(api.limiter, name, ctx.account.id, limit, window, epoch)


FullDep = Annotated[BearerContext, Depends(require("full"))]
WorkspaceReadDep = Annotated[BearerContext, Depends(require("workspace:read"))]
AppsReadDep = Annotated[BearerContext, Depends(require("apps:read"))]
AppReadDep = Annotated[tuple[BearerContext, AppAccess], Depends(require_app("apps:read"))]
AppRunDep = Annotated[tuple[BearerContext, AppAccess], Depends(require_app("apps:run"))]

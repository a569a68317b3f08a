"""The user-scoped API under ``/openapi/v1`` (openapi-user.md): routers, errors, headers."""

from __future__ import annotations

from fastapi import FastAPI

from sluice.api.openapi_user import account, apps, device
from sluice.api.openapi_user.errors import install_scoped_errors
from sluice.api.openapi_user.middleware import UserApiMiddleware
from sluice.settings import Settings

PREFIX = "/openapi/v1"
CONSOLE_PREFIX = "/console/api"


def install_user_surfaces(app: FastAPI, settings: Settings) -> None:
    """Register the user API, the console API and the pages on ``app``.

    With ``SLUICE_OPENAPI__ENABLED=false`` nothing under the prefix and no ``/device`` page exists,
    so both answer 404.
    """
    import sluice.api.console.routes as console_routes
    import sluice.api.pages.routes as page_routes

    install_scoped_errors(app, (PREFIX, CONSOLE_PREFIX))
    app.include_router(console_routes.router, prefix=CONSOLE_PREFIX)
    app.include_router(page_routes.login_router)
    if not settings.openapi.enabled:
        return
    from sluice.api.openapi_user import forms  # human input (O1/O2)

    for router in (account.router, apps.router, device.router, forms.router):
        app.include_router(router, prefix=PREFIX)
    app.include_router(page_routes.device_router)
    origins = settings.openapi.split(settings.openapi.cors_allow_origins)
    app.add_middleware(UserApiMiddleware, prefix=PREFIX, cors_origins=origins)

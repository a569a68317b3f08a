"""The FastAPI application: surfaces, error renderer, and the container's lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from sluice import __version__
from sluice.api.errors import install_error_handlers
from sluice.api.openapi import install_openapi
from sluice.api.openapi_user import install_user_surfaces
from sluice.api.service import app_info, chat, conversations, events, files, logs, workflows
from sluice.bootstrap import Container
from sluice.services.user_api import UserApi
from sluice.settings import Settings, load_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    resolved = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        container = await Container.start(resolved, role="api")
        app.state.container = container
        app.state.user_api = UserApi.build(resolved, container.db, container.graphs)
        app.state.user_api.start_housekeeping()
        try:
            yield
        finally:
            await app.state.user_api.close()
            await container.close()

    app = FastAPI(
        title="Sluice",
        version=__version__,
        lifespan=lifespan,
        separate_input_output_schemas=False,
    )
    app.add_middleware(
        CORSMiddleware,
        allow_origins=["*"],
        allow_credentials=False,
        allow_methods=["*"],
        allow_headers=["Authorization", "Content-Type", "Last-Event-ID"],
        expose_headers=["X-Workflow-Run-ID", "X-Task-ID"],
    )
    install_error_handlers(app)
    service_routers = (logs.router, workflows.router, events.router, app_info.router)
    for router in (*service_routers, files.router, chat.router, conversations.router):
        app.include_router(router, prefix="/v1")

    @app.get("/_health", include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    from sluice.api.public import forms as public_forms
    from sluice.api.public import page as form_page
    from sluice.api.service import forms as service_forms

    app.include_router(service_forms.router, prefix="/v1")
    app.include_router(public_forms.router)
    app.include_router(form_page.router)
    install_user_surfaces(app, resolved)
    install_openapi(app)
    return app

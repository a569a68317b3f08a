"""The FastAPI application: surfaces, error renderer, and the container's lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from sluice import __version__
from sluice.api.errors import install_error_handlers
from sluice.api.openapi import install_openapi
from sluice.api.service import app_info, logs, workflows
from sluice.bootstrap import Container
from sluice.settings import Settings, load_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    resolved = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        container = await Container.start(resolved, role="api")
        app.state.container = container
        try:
            yield
        finally:
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
    for router in (logs.router, workflows.router, app_info.router):
        app.include_router(router, prefix="/v1")

    @app.get("/_health", include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    install_openapi(app)
    return app

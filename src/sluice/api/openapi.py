"""The published OpenAPI document: stable ids, the app-key security scheme, no 422 responses."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from sluice.api.service.schemas import TaskStopRequest, WorkflowRunRequest

EXTRA_SCHEMAS = (WorkflowRunRequest, TaskStopRequest)


def install_openapi(app: FastAPI) -> None:
    def build() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        doc = get_openapi(
            title=app.title, version=app.version, routes=app.routes, separate_input_output_schemas=False
        )
        components = doc.setdefault("components", {})
        schemas = components.setdefault("schemas", {})
        for model in EXTRA_SCHEMAS:
            schemas[model.__name__] = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, sub in schemas[model.__name__].pop("$defs", {}).items():
                schemas.setdefault(name, sub)
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        components["securitySchemes"] = {"AppApiKey": {"type": "http", "scheme": "bearer"}}
        for path, operations in doc.get("paths", {}).items():
            for operation in operations.values():
                operation.get("responses", {}).pop("422", None)
                if path.startswith("/v1/"):
                    operation["security"] = [{"AppApiKey": []}]
        app.openapi_schema = doc
        return doc

    app.openapi = build  # type: ignore[method-assign]

"""The published OpenAPI document (``/openapi.json``) for every surface, and its per-surface export.

Post-processing of FastAPI's document: stable component names (request bodies the handlers read
themselves are added explicitly), security per surface, no ``HTTPValidationError`` anywhere (the
Service API never answers 422; the user and console APIs answer 422 with ``ErrorBody``), and the
describe route's ``fields`` as an exploded array of its enum. ``export_documents`` splits the one
document by surface, keeping only the components each part references, plus a Markdown rendering.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterable, Iterator
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import BaseModel

from sluice.api.console.schemas import REQUEST_SCHEMAS as CONSOLE_REQUESTS
from sluice.api.openapi_user.schemas import REQUEST_SCHEMAS as USER_REQUESTS
from sluice.api.service.chat_schemas import ChatMessageRequest, FeedbackRequest, RenameConversationRequest
from sluice.api.service.schemas import FileInput, TaskStopRequest, WorkflowRunRequest

EXTRA_SCHEMAS: tuple[type[BaseModel], ...] = (
    WorkflowRunRequest,
    TaskStopRequest,
    ChatMessageRequest,
    RenameConversationRequest,
    FeedbackRequest,
    FileInput,
)
USER_EXTRA_SCHEMAS: tuple[type[BaseModel], ...] = (*USER_REQUESTS, *CONSOLE_REQUESTS)
USER_PREFIX = "/openapi/v1"
CONSOLE_PREFIX = "/console/api"
PUBLIC_USER_OPERATIONS = {
    "get_health",
    "create_device_code",
    "poll_device_token",
    "lookup_device_code",
    "list_permitted_external_apps",
}
CONSOLE_SESSION_OPERATIONS = {"approve_device_code", "deny_device_code"}
SECURITY_SCHEMES = {
    "AppApiKey": {"type": "http", "scheme": "bearer"},
    "UserBearer": {"type": "http", "scheme": "bearer", "description": "A dfoa_ token from the device flow."},
    "ConsoleSession": {"type": "apiKey", "in": "cookie", "name": "sluice_session"},
    "CsrfToken": {"type": "apiKey", "in": "header", "name": "X-CSRF-Token"},
}
SURFACES = {
    "service-api": ("Sluice Service API", "/v1/", ("AppApiKey",)),
    "user-api": ("Sluice user API", USER_PREFIX + "/", ("UserBearer", "ConsoleSession", "CsrfToken")),
    "console-api": ("Sluice console API", CONSOLE_PREFIX + "/", ("ConsoleSession", "CsrfToken")),
}
ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
SERVICE_BASELINE = (400, 401, 403, 404, 500)
USER_BASELINE = (400, 401, 403, 404, 422, 429, 500)
DESCRIBE_FIELDS = ["info", "parameters", "input_schema"]


def _add_models(schemas: dict[str, Any], models: Iterable[type[BaseModel]]) -> None:
    for model in models:
        schemas[model.__name__] = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, sub in schemas[model.__name__].pop("$defs", {}).items():
            schemas.setdefault(name, sub)


def _operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, operations in doc.get("paths", {}).items():
        for method, operation in operations.items():
            yield path, method, operation


def _fix_user_operation(method: str, operation: dict[str, Any], console: bool) -> None:
    responses = operation.setdefault("responses", {})
    if "422" in responses:
        responses["422"] = {
            "description": "Validation Error",
            "content": {"application/json": {"schema": ERROR_REF}},
        }
    op_id = operation.get("operationId")
    if console:
        if op_id == "console_login":
            operation["security"] = []
        elif method == "get":
            operation["security"] = [{"ConsoleSession": []}]
        else:
            operation["security"] = [{"ConsoleSession": [], "CsrfToken": []}]
        return
    if op_id in PUBLIC_USER_OPERATIONS:
        operation["security"] = []
    elif op_id in CONSOLE_SESSION_OPERATIONS:
        operation["security"] = [{"ConsoleSession": [], "CsrfToken": []}]
    else:
        operation["security"] = [{"UserBearer": []}]
    if op_id == "describe_app":
        for param in operation.get("parameters", []):
            if param.get("name") == "fields":
                param["schema"] = {"type": "array", "items": {"type": "string", "enum": DESCRIBE_FIELDS}}
                param["style"], param["explode"] = "form", True


def _api_routes(routes: Iterable[Any]) -> Iterator[APIRoute]:
    """Every APIRoute, looking into included routers (FastAPI ≥ 0.16x keeps them nested)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        nested = getattr(route, "original_router", None)
        if nested is not None:
            yield from _api_routes(nested.routes)


def _default_statuses(app: FastAPI) -> None:
    """Routes whose response class takes no ``status_code`` (custom SSE responses) document 200;
    FastAPI cannot infer a status for them. Their handlers return responses, so nothing else changes."""
    for route in _api_routes(app.routes):
        if route.status_code is None:
            response_class = route.response_class
            if (
                isinstance(response_class, type)
                and "status_code" not in inspect.signature(response_class).parameters
            ):
                route.status_code = 200


def _json_errors(operation: dict[str, Any]) -> None:
    """Error bodies are JSON even on streaming routes (FastAPI files them under the route's
    media type, e.g. ``text/event-stream``)."""
    for status, response in operation.get("responses", {}).items():
        content = response.get("content") or {}
        if status[:1] in ("4", "5") and content and "application/json" not in content:
            schema = next(iter(content.values())).get("schema", {})
            response["content"] = {"application/json": {"schema": schema}}


def _baseline(operation: dict[str, Any], statuses: Iterable[int], schema: str) -> None:
    """Statuses every operation of a surface can answer (auth, routing, limits, crashes)."""
    responses = operation.setdefault("responses", {})
    ref = {"$ref": f"#/components/schemas/{schema}"}
    for status in statuses:
        responses.setdefault(
            str(status),
            {"description": HTTPStatus(status).phrase, "content": {"application/json": {"schema": ref}}},
        )


def build_document(app: FastAPI) -> dict[str, Any]:
    _default_statuses(app)
    doc = get_openapi(
        title=app.title, version=app.version, routes=app.routes, separate_input_output_schemas=False
    )
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    _add_models(schemas, EXTRA_SCHEMAS)
    if any(path.startswith((USER_PREFIX, CONSOLE_PREFIX)) for path in doc.get("paths", {})):
        _add_models(schemas, USER_EXTRA_SCHEMAS)
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    components["securitySchemes"] = dict(SECURITY_SCHEMES)
    for path, method, operation in _operations(doc):
        _json_errors(operation)
        if path.startswith("/v1/"):
            operation.get("responses", {}).pop("422", None)
            operation["security"] = [{"AppApiKey": []}]
            _baseline(operation, SERVICE_BASELINE, "ServiceApiError")
        elif path.startswith((USER_PREFIX + "/", CONSOLE_PREFIX + "/")):
            _fix_user_operation(method, operation, path.startswith(CONSOLE_PREFIX))
            if operation["security"]:
                _baseline(operation, USER_BASELINE, "ErrorBody")
    components["schemas"] = dict(sorted(schemas.items()))
    return doc


def install_openapi(app: FastAPI) -> None:
    # Before the first request: FastAPI derives per-request copies of included routes lazily,
    # and those copies must already carry the status (see ``_default_statuses``).
    _default_statuses(app)

    def build() -> dict[str, Any]:
        if not app.openapi_schema:
            app.openapi_schema = build_document(app)
        return app.openapi_schema

    app.openapi = build  # type: ignore[method-assign]


# -- export ------------------------------------------------------------------------------------------


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            yield ref.rsplit("/", 1)[1]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def surface_document(doc: dict[str, Any], surface: str) -> dict[str, Any]:
    """The part of ``doc`` for one surface, with only the components it references."""
    title, prefix, schemes = SURFACES[surface]
    paths = {p: ops for p, ops in doc.get("paths", {}).items() if p.startswith(prefix)}
    all_schemas = doc.get("components", {}).get("schemas", {})
    keep: set[str] = set()
    pending = list(_refs(paths))
    while pending:
        name = pending.pop()
        if name in keep or name not in all_schemas:
            continue
        keep.add(name)
        pending.extend(_refs(all_schemas[name]))
    return {
        "openapi": doc["openapi"],
        "info": {**doc["info"], "title": title},
        "paths": paths,
        "components": {
            "schemas": {name: all_schemas[name] for name in sorted(keep)},
            "securitySchemes": {name: SECURITY_SCHEMES[name] for name in schemes},
        },
    }


def _type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return f"[{name}](#{name.lower()})"
    if "anyOf" in schema:
        return " \\| ".join(_type(s) for s in schema["anyOf"])
    if schema.get("type") == "array":
        return f"array of {_type(schema.get('items', {}))}"
    if "enum" in schema:
        return " \\| ".join(f"`{v}`" for v in schema["enum"])
    return str(schema.get("type", "any"))


def markdown(doc: dict[str, Any]) -> str:
    """A readable rendering: operations with parameters, bodies and responses, then the models."""
    lines = [
        f"# {doc['info']['title']}",
        "",
        f"Version {doc['info']['version']}. Generated by `sluice openapi export`.",
        "",
    ]
    for path, method, op in _operations(doc):
        lines += [f"## `{method.upper()} {path}`", "", f"operationId `{op.get('operationId')}`"]
        security = op.get("security")
        auth = ", ".join(" + ".join(s) for s in security) if security else "none"
        lines += [f"· auth: {auth}", ""]
        params = op.get("parameters", [])
        if params:
            lines += ["| parameter | in | required | type |", "|---|---|---|---|"]
            for p in params:
                kind = _type(p.get("schema", {}))
                lines.append(f"| `{p['name']}` | {p['in']} | {p.get('required', False)} | {kind} |")
            lines.append("")
        body = op.get("requestBody", {}).get("content", {})
        for media, content in body.items():
            lines += [f"Body ({media}): {_type(content.get('schema', {}))}", ""]
        lines += ["| status | description | body |", "|---|---|---|"]
        for status, response in op.get("responses", {}).items():
            content = response.get("content", {})
            kinds = "; ".join(f"{m}: {_type(c.get('schema', {}))}" for m, c in content.items()) or "—"
            lines.append(f"| {status} | {response.get('description', '')} | {kinds} |")
        lines.append("")
    lines += ["## Models", ""]
    for name, schema in doc.get("components", {}).get("schemas", {}).items():
        lines += [f"### {name}", ""]
        props = schema.get("properties")
        if not props:
            lines += [f"{_type(schema)}", ""]
            continue
        required = set(schema.get("required", []))
        lines += ["| field | type | required |", "|---|---|---|"]
        lines += [f"| `{key}` | {_type(value)} | {key in required} |" for key, value in props.items()]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def export_documents(doc: dict[str, Any]) -> dict[str, str]:
    """File name → content for ``sluice openapi export``: one JSON and one Markdown per surface."""
    files: dict[str, str] = {}
    for surface in SURFACES:
        part = surface_document(doc, surface)
        files[f"{surface}.json"] = json.dumps(part, indent=2, ensure_ascii=False) + "\n"
        files[f"{surface}.md"] = markdown(part)
    return files

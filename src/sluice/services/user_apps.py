"""Apps as the user API sees them: the app gate (pipeline steps 6–10), listing and describe.

Visible apps are those of a workspace with ``status = normal`` and ``enable_api``. Non-members get
404 ``workspace not found`` so workspace ids do not leak. ``input_schema`` renders the published
Start form as JSON Schema 2020-12 (openapi-user.md §8.9).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from sluice.adapters.sql import repos, user_repos
from sluice.adapters.sql.tables import App, Tenant, TenantAccountJoin, Workflow
from sluice.runtime.graphs import GraphCache
from sluice.services.parameters import app_parameters
from sluice.services.user_errors import UserApiError, forbidden, invalid, not_found
from sluice.settings import ApiSettings

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
APP_MODES = ("completion", "chat", "advanced-chat", "workflow", "agent-chat")
DESCRIBE_FIELDS = ("info", "parameters", "input_schema")
EMPTY_PARAMETERS: dict[str, Any] = {
    "opening_statement": None,
    "suggested_questions": [],
    "user_input_form": [],
    "file_upload": None,
    "system_parameters": {},
}
FILE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "type": {"type": "string"},
        "transfer_method": {"type": "string"},
        "url": {"type": "string"},
        "upload_file_id": {"type": "string"},
    },
}


def is_uuid(value: str | None) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def plain_iso(value: Any) -> str | None:
    """``2026-05-18T11:13:20`` (no offset, no fraction), as Dify emits app and workspace times."""
    return None if value is None else str(value.replace(microsecond=0).isoformat())


@dataclass(frozen=True, slots=True)
class AppAccess:
    """An app that passed the gate, with its workspace and the caller's membership."""

    app: App
    tenant: Tenant
    membership: TenantAccountJoin


def input_schema(variables: Sequence[Mapping[str, Any]], mode: str) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    required: list[str] = []
    for var in variables:
        name = str(var.get("variable") or "")
        kind = var.get("type")
        if not name or name.startswith("sys."):
            continue
        prop: dict[str, Any]
        if kind in ("text-input", "paragraph"):
            prop = {"type": "string"}
            max_length = var.get("max_length")
            if isinstance(max_length, int) and not isinstance(max_length, bool) and max_length > 0:
                prop["maxLength"] = max_length
        elif kind == "select":
            prop = {"type": "string", "enum": [str(o) for o in var.get("options") or []]}
        elif kind == "number":
            prop = {"type": "number"}
        elif kind == "file":
            prop = dict(FILE_SCHEMA)
        elif kind == "file-list":
            prop = {"type": "array", "items": dict(FILE_SCHEMA)}
        else:
            continue
        prop["title"] = str(var.get("label") or name)
        properties[name] = prop
        if var.get("required"):
            required.append(name)
    root: dict[str, Any] = {
        "$schema": SCHEMA_DIALECT,
        "type": "object",
        "properties": {
            "inputs": {
                "type": "object",
                "properties": properties,
                "required": required,
                "additionalProperties": False,
            }
        },
        "required": ["inputs"],
    }
    if mode == "advanced-chat":
        root["properties"]["query"] = {"type": "string", "minLength": 1}
        root["required"].append("query")
    return root


class UserAppService:
    def __init__(self, db: async_sessionmaker[AsyncSession], graphs: GraphCache, limits: ApiSettings) -> None:
        self._db = db
        self._graphs = graphs
        self._limits = limits

    async def workspace(self, account_id: str, workspace_id: str | None) -> tuple[TenantAccountJoin, Tenant]:
        """Membership in a workspace that is not archived; otherwise 404 ``workspace not found``."""
        if not workspace_id or not is_uuid(workspace_id):
            raise not_found("workspace not found")
        async with self._db() as session:
            found = await user_repos.membership(session, account_id, workspace_id)
        if found is None or found[1].status == "archive":
            raise not_found("workspace not found")
        return found

    async def gate(self, account_id: str, app_id: str, query_workspace_id: str | None) -> AppAccess:
        """Pipeline steps 6–10 for a UUID ``app_id``."""
        async with self._db() as session:
            app = await repos.get_app(session, app_id) if is_uuid(app_id) else None
            if app is None or app.status != "normal":
                raise not_found("app not found")
            if not app.enable_api:
                raise forbidden("service_api_disabled")
            tenant = await repos.get_tenant(session, app.tenant_id)
            if tenant is None or tenant.status == "archive":
                raise forbidden("workspace unavailable")
            found = await user_repos.membership(session, account_id, tenant.id)
        if found is None:
            raise not_found("workspace not found")
        if query_workspace_id is not None and query_workspace_id != tenant.id:
            raise invalid("workspace_id does not match app's workspace")
        return AppAccess(app, tenant, found[0])

    async def resolve(self, account_id: str, app_ref: str, query_workspace_id: str | None) -> AppAccess:
        """A UUID goes through the gate; a name is looked up among the workspace's visible apps."""
        if is_uuid(app_ref):
            return await self.gate(account_id, app_ref, query_workspace_id)
        if not query_workspace_id:
            raise invalid("workspace_id is required for name-based lookup")
        await self.workspace(account_id, query_workspace_id)
        async with self._db() as session:
            matches = await user_repos.visible_apps_named(session, query_workspace_id, app_ref)
        if not matches:
            raise not_found("app not found")
        if len(matches) > 1:
            ids = ", ".join(a.id for a in matches)
            raise UserApiError(409, "conflict", f"several apps are named {app_ref!r}: {ids}")
        return await self.gate(account_id, matches[0].id, query_workspace_id)

    async def list_apps(
        self,
        tenant: Tenant,
        *,
        page: int,
        limit: int,
        mode: str | None,
        name: str | None,
        tag: str | None,
    ) -> dict[str, Any]:
        async with self._db() as session:
            if name and is_uuid(name):
                app = await repos.get_app(session, name)
                visible = app is not None and app.tenant_id == tenant.id and app.status == "normal"
                if app is None or not visible or not app.enable_api:
                    return {"page": 1, "limit": 1, "total": 0, "has_more": False, "data": []}
                rows = await self._rows(session, tenant, [app])
                return {"page": 1, "limit": 1, "total": 1, "has_more": False, "data": rows}
            apps, total = await user_repos.visible_apps(
                session, tenant.id, mode=mode, name=name, tag=tag, page=page, limit=limit
            )
            data = await self._rows(session, tenant, apps)
        return {"page": page, "limit": limit, "total": total, "has_more": page * limit < total, "data": data}

    async def _rows(self, session: AsyncSession, tenant: Tenant, apps: list[App]) -> list[dict[str, Any]]:
        tags = await user_repos.tags_by_app(session, [a.id for a in apps])
        names = await user_repos.account_names(session, [a.created_by for a in apps if a.created_by])
        return [
            {
                "id": a.id,
                "name": a.name,
                "description": a.description or "",
                "mode": a.mode,
                "updated_at": plain_iso(a.updated_at),
                "workspace_id": tenant.id,
                "workspace_name": tenant.name,
                "tags": [{"name": t} for t in tags.get(a.id, [])],
                "created_by_name": names.get(a.created_by or ""),
            }
            for a in apps
        ]

    async def published(self, app: App) -> Workflow | None:
        if not app.workflow_id:
            return None
        async with self._db() as session:
            return await repos.get_workflow(session, app.workflow_id)

    async def describe(self, access: AppAccess, fields: Sequence[str]) -> dict[str, Any]:
        wanted = set(fields) or set(DESCRIBE_FIELDS)
        app = access.app
        out: dict[str, Any] = {"info": None, "parameters": None, "input_schema": None}
        workflow = await self.published(app)
        graph = self._graphs.get(workflow) if workflow is not None else None
        if "info" in wanted:
            async with self._db() as session:
                tags = (await user_repos.tags_by_app(session, [app.id])).get(app.id, [])
                names = await user_repos.account_names(session, [app.created_by] if app.created_by else [])
            out["info"] = {
                "id": app.id,
                "name": app.name,
                "mode": app.mode,
                "description": app.description or "",
                "updated_at": plain_iso(app.updated_at),
                "service_api_enabled": bool(app.enable_api),
                "is_agent": app.mode in ("agent-chat", "advanced-chat"),
                "tags": [{"name": t} for t in tags],
                "author": names.get(app.created_by or ""),
            }
        if "parameters" in wanted:
            if workflow is None or graph is None:
                out["parameters"] = dict(EMPTY_PARAMETERS)
            else:
                out["parameters"] = app_parameters(
                    workflow.features or {}, graph.start_variables, self._limits
                )
        if "input_schema" in wanted:
            if graph is None:
                out["input_schema"] = {
                    "$schema": SCHEMA_DIALECT,
                    "type": "object",
                    "properties": {},
                    "required": [],
                }
            else:
                out["input_schema"] = input_schema(graph.start_variables, app.mode)
        return out

    async def published_version(self, app: App, workflow_id: str | None) -> None:
        """``workflow_id`` of the run body: malformed or draft → 400, unknown → 404."""
        if workflow_id is None:
            return
        if not is_uuid(workflow_id):
            raise UserApiError(400, "bad_request", f"Invalid workflow_id format: '{workflow_id}'. ")
        async with self._db() as session:
            version = await repos.get_workflow(session, workflow_id)
        if version is None or version.app_id != app.id:
            raise not_found("Workflow not found")
        if version.version == "draft" or version.id != app.workflow_id:
            raise UserApiError(400, "bad_request", "Only the published workflow can be run here.")

"""Apps: importing and publishing DSL files, API keys, and resolving a request's app key."""

from __future__ import annotations

import hashlib
import secrets
import string
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from sluice.adapters.sql import repos
from sluice.adapters.sql.tables import ApiKey, App, Tenant, Workflow
from sluice.engine import load_dsl
from sluice.runtime.clock import utcnow
from sluice.services.errors import DslInvalid, Forbidden, InvalidParam, Unauthorized

KEY_ALPHABET = string.ascii_letters + string.digits
MAX_KEYS_PER_APP = 10
DEFAULT_WORKSPACE = "Default"


@dataclass(frozen=True, slots=True)
class ImportOutcome:
    app_id: str
    workflow_id: str
    status: str
    findings: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class AppAuth:
    """The app (and its workspace) an API key authenticated."""

    app: App
    tenant: Tenant


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_app_key() -> str:
    return "app-" + "".join(secrets.choice(KEY_ALPHABET) for _ in range(24))


class AppService:
    def __init__(self, db: async_sessionmaker[AsyncSession]) -> None:
        self._db = db

    async def import_app(
        self,
        dsl_text: str,
        *,
        workspace: str = DEFAULT_WORKSPACE,
        allow_newer: bool = False,
        tenant_id: str | None = None,
        created_by: str | None = None,
    ) -> ImportOutcome:
        """Validate, store the DSL verbatim with its parsed graph, and publish it as a new app.

        ``tenant_id`` (console imports) names the workspace by id instead of by name."""
        result = load_dsl(dsl_text, allow_newer=allow_newer)
        findings = [f.to_dict() for f in result.findings]
        if result.graph is None or result.document is None:
            raise DslInvalid([f for f in findings if f["level"] == "error"])
        graph, workflow_doc = result.graph, result.document["workflow"]
        now = utcnow()
        async with self._db() as session, session.begin():
            if tenant_id is not None:
                tenant = await repos.get_tenant(session, tenant_id)
                if tenant is None:
                    raise InvalidParam(f"Workspace {tenant_id} not found")
            else:
                tenant = await repos.tenant_by_name(session, workspace)
            if tenant is None:
                tenant = Tenant(name=workspace)
                session.add(tenant)
                await session.flush()
            app = App(
                tenant_id=tenant.id,
                name=graph.app.name or "Untitled",
                description=graph.app.description,
                mode=graph.app.mode,
                icon=graph.app.icon,
                icon_type=graph.app.icon_type,
                icon_background=graph.app.icon_background,
                created_by=created_by,
                updated_by=created_by,
            )
            session.add(app)
            await session.flush()
            version = Workflow(
                tenant_id=tenant.id,
                app_id=app.id,
                version=now.strftime("%Y-%m-%d %H:%M:%S.%f"),
                dsl=dsl_text,
                graph=workflow_doc.get("graph") or {},
                features=dict(graph.features),
                environment_variables=list(graph.environment_variables),
                conversation_variables=list(graph.conversation_variables),
                fingerprint=graph.fingerprint,
                created_by=created_by,
            )
            session.add(version)
            await session.flush()
            app.workflow_id = version.id
        return ImportOutcome(app.id, version.id, result.status, findings)

    async def create_key(self, app_id: str) -> str:
        """Mint a key; the plaintext is returned once and only its SHA-256 is stored."""
        key = new_app_key()
        async with self._db() as session, session.begin():
            app = await repos.get_app(session, app_id)
            if app is None:
                raise InvalidParam(f"App {app_id} not found")
            if await repos.count_keys(session, app_id) >= MAX_KEYS_PER_APP:
                raise InvalidParam(f"An app has at most {MAX_KEYS_PER_APP} API keys")
            session.add(
                ApiKey(
                    tenant_id=app.tenant_id,
                    app_id=app.id,
                    token_hash=hash_key(key),
                    token_prefix=key[:8],
                    token_last4=key[-4:],
                )
            )
        return key

    async def authenticate(self, authorization: str | None) -> AppAuth:
        """Service API key checks, in the spec's order (service-api §2)."""
        parts = (authorization or "").strip().split(None, 1)
        if len(parts) != 2 or not parts[1].strip():
            raise Unauthorized("Authorization header must be provided and start with 'Bearer'")
        scheme, key = parts[0], parts[1].strip()
        if scheme.lower() != "bearer":
            raise Unauthorized("Authorization scheme must be 'Bearer'")
        if not key.startswith("app-"):
            raise Unauthorized("Access token is invalid")
        async with self._db() as session:
            row = await repos.key_by_hash(session, hash_key(key))
            if row is None:
                raise Unauthorized("Access token is invalid")
            app = await repos.get_app(session, row.app_id)
            if app is None:
                raise Forbidden("The app no longer exists.")
            if app.status != "normal":
                raise Forbidden("The app's status is abnormal.")
            if not app.enable_api:
                raise Forbidden("The app's API service has been disabled.")
            tenant = await repos.get_tenant(session, app.tenant_id)
            if tenant is None:
                raise Forbidden("The app no longer exists.")
            if tenant.status == "archive":
                raise Forbidden("The workspace's status is archived.")
        return AppAuth(app, tenant)

    async def tags(self, app_id: str) -> list[str]:
        async with self._db() as session:
            return await repos.tag_names(session, app_id)

    async def published(self, app: App) -> Workflow | None:
        if not app.workflow_id:
            return None
        async with self._db() as session:
            return await repos.get_workflow(session, app.workflow_id)

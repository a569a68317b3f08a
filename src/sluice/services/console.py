"""The minimal console's use cases: apps of the signed-in account's workspaces, imports, API keys,
the ``enable_api`` switch and run listings. Every app is reached through a membership, so another
workspace's app is 404 here too; writes need an owner, admin or editor role."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from sluice.adapters.sql import repos, user_repos
from sluice.adapters.sql.tables import App, WorkflowRun
from sluice.services.apps import AppService, ImportOutcome
from sluice.services.user_apps import is_uuid
from sluice.services.user_errors import forbidden, not_found

WRITERS = ("owner", "admin", "editor")


class ConsoleService:
    def __init__(self, db: async_sessionmaker[AsyncSession], apps: AppService) -> None:
        self._db = db
        self._apps = apps

    async def _role(self, account_id: str, tenant_id: str | None) -> str:
        found = None
        if tenant_id and is_uuid(tenant_id):
            async with self._db() as session:
                found = await user_repos.membership(session, account_id, tenant_id)
        if found is None:
            raise not_found("workspace not found")
        return found[0].role

    async def app(self, account_id: str, app_id: str, *, write: bool = False) -> App:
        async with self._db() as session:
            app = await repos.get_app(session, app_id) if is_uuid(app_id) else None
        if app is None:
            raise not_found("app not found")
        try:
            role = await self._role(account_id, app.tenant_id)
        except Exception as exc:
            raise not_found("app not found") from exc
        if write and role not in WRITERS:
            raise forbidden("insufficient_role")
        return app

    async def apps(self, account_id: str, tenant_id: str | None) -> list[App]:
        await self._role(account_id, tenant_id)
        assert tenant_id is not None
        async with self._db() as session:
            return await user_repos.apps_of_tenant(session, tenant_id)

    async def import_app(self, account_id: str, tenant_id: str | None, dsl: str) -> ImportOutcome:
        if await self._role(account_id, tenant_id) not in WRITERS:
            raise forbidden("insufficient_role")
        return await self._apps.import_app(dsl, tenant_id=tenant_id, created_by=account_id)

    async def create_key(self, account_id: str, app_id: str) -> str:
        app = await self.app(account_id, app_id, write=True)
        return await self._apps.create_key(app.id)

    async def set_api(self, account_id: str, app_id: str, enabled: bool) -> bool:
        app = await self.app(account_id, app_id, write=True)
        async with self._db() as session, session.begin():
            await user_repos.set_app_fields(session, app.id, enable_api=enabled, updated_by=account_id)
        return enabled

    async def runs(
        self, account_id: str, app_id: str, page: int, limit: int
    ) -> tuple[list[WorkflowRun], int]:
        app = await self.app(account_id, app_id)
        async with self._db() as session:
            return await user_repos.runs_of_app(session, app.id, page, limit)


def run_row(run: WorkflowRun) -> dict[str, Any]:
    def iso(value: Any) -> str | None:
        return None if value is None else value.replace(microsecond=0).isoformat()

    return {
        "id": run.id,
        "task_id": run.task_id,
        "status": run.status,
        "created_from": run.created_from,
        "created_by_role": run.created_by_role,
        "created_by": run.created_by,
        "error": run.error,
        "elapsed_time": run.elapsed_time,
        "total_steps": run.total_steps,
        "created_at": iso(run.created_at),
        "finished_at": iso(run.finished_at),
    }

"""App and key states changed behind the API (§11 14 and 16): the test edits the server's own
database, as the console would, and the next request sees it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import delete, update
from sqlmodel import col
from tests.service_api.conftest import SHARED_FIXTURES, app_key, assert_error, auth
from tests.support.servers import LiveServer

from sluice.adapters.sql.db import create_engine, session_factory
from sluice.adapters.sql.tables import ApiKey, App, Tenant

RUN = {"inputs": {"query": "hi"}, "user": "u1"}


def database_url(server: LiveServer) -> str:
    url = server.env.get("SLUICE_DATABASE_URL")
    return url or f"sqlite+aiosqlite:///{(Path(server.env['SLUICE_DATA_DIR']) / 'sluice.db').resolve()}"


def execute(server: LiveServer, *statements: Any) -> None:
    async def run() -> None:
        engine = create_engine(database_url(server))
        try:
            async with session_factory(engine)() as session, session.begin():
                for statement in statements:
                    await session.exec(statement)
        finally:
            await engine.dispose()

    asyncio.run(run())


def test_disabled_archived_and_deleted_scenario_14(svc: LiveServer, tmp_path: Path) -> None:
    # a workspace of its own, so archiving it touches no other test's apps
    dsl = tmp_path / "a.yml"
    dsl.write_text((SHARED_FIXTURES / "app_a.yml").read_text())
    app_id = svc.cli("apps", "import", str(dsl), "--workspace", "W-states").stdout.strip().splitlines()[-1]
    key, second_key = svc.create_key(app_id), svc.create_key(app_id)
    with httpx.Client(base_url=svc.base_url, timeout=60) as client:
        assert client.post("/v1/workflows/run", json=RUN, headers=auth(key)).status_code == 200
        execute(svc, update(App).where(col(App.id) == app_id).values(enable_api=False))
        resp = client.post("/v1/workflows/run", json=RUN, headers=auth(key))
        assert_error(resp, 403, "forbidden", "The app's API service has been disabled.")
        execute(svc, update(App).where(col(App.id) == app_id).values(enable_api=True))
        execute(svc, update(Tenant).where(col(Tenant.name) == "W-states").values(status="archive"))
        resp = client.post("/v1/workflows/run", json=RUN, headers=auth(key))
        assert_error(resp, 403, "forbidden", "The workspace's status is archived.")
        execute(svc, update(Tenant).where(col(Tenant.name) == "W-states").values(status="normal"))
        execute(svc, delete(ApiKey).where(col(ApiKey.token_hash) == _hash(key)))
        assert_error(
            client.get("/v1/info", headers=auth(key)), 401, "unauthorized", "Access token is invalid"
        )
        assert client.get("/v1/info", headers=auth(second_key)).status_code == 200
        execute(
            svc, delete(ApiKey).where(col(ApiKey.app_id) == app_id), delete(App).where(col(App.id) == app_id)
        )
        resp = client.get("/v1/info", headers=auth(second_key))
        assert_error(resp, 401, "unauthorized", "Access token is invalid")


def test_unpublished_app_scenario_16(svc: LiveServer) -> None:
    app = app_key(svc, SHARED_FIXTURES / "app_a.yml")
    execute(svc, update(App).where(col(App.id) == app.app_id).values(workflow_id=None))
    with httpx.Client(base_url=svc.base_url, timeout=60) as client:
        resp = client.post("/v1/workflows/run", json=RUN, headers=auth(app.key))
        assert_error(resp, 400, "invalid_param", "Workflow not published")
        resp = client.get("/v1/parameters", headers=auth(app.key))
        assert_error(resp, 400, "app_unavailable", "App unavailable, please check your app configurations.")


def _hash(key: str) -> str:
    import hashlib

    return hashlib.sha256(key.encode()).hexdigest()

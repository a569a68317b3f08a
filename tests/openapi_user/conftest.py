"""Fixtures for the user API: the real app in-process (httpx ASGI transport) with an injected clock,
on SQLite (embedded) and on PostgreSQL + Redis (distributed: the Redis rate limiter), and helpers
that build the spec's fixture (Ann in W, Bob in W2, apps A, C, D, E)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from sluice.adapters.sql import migrate
from sluice.api.app import create_app
from sluice.services.apps import AppService
from sluice.services.user_api import UserApi
from sluice.settings import Mode, Settings, StreamingSettings
from tests.support.services import unique_name

FIXTURES = Path(__file__).parent.parent / "fixtures"
PASSWORD = "correct horse battery"
_ips = itertools.count(10)


class FakeClock:
    """Aware UTC time that only moves when a test says so."""

    def __init__(self) -> None:
        self.at = datetime.now(UTC).replace(microsecond=0)

    def now(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


@dataclass
class Stack:
    app: FastAPI
    clock: FakeClock
    users: UserApi
    settings: Settings
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    def client(self, ip: str | None = None) -> httpx.AsyncClient:
        """A client with its own cookie jar and (by default) its own source IP."""
        n = next(_ips)
        address = ip or f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"
        transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=False, client=(address, 40000))
        c = httpx.AsyncClient(transport=transport, base_url="http://sluice.test", timeout=30)
        self.clients.append(c)
        return c


def stack_settings(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    if kind == "sqlite":
        return Settings(data_dir=tmp_path / "data", demo_app=False)
    prefix = unique_name("u8")
    return Settings(
        mode=Mode.distributed,
        data_dir=tmp_path / "data",
        database_url=request.getfixturevalue("postgres_database"),
        redis_url=request.getfixturevalue("redis_server_url"),
        secret_key="test-secret",
        demo_app=False,
        streaming=StreamingSettings(redis_key_prefix=prefix, arq_queue_name=f"{prefix}:queue"),
    )


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def backend_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Resolved in sync code: the session's PostgreSQL fixture runs its own event loop."""
    settings = stack_settings(request.param, tmp_path, request)
    migrate.upgrade(settings.sql_url)
    return settings


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[FastAPI]:
    """The app's lifespan. On the way out, let the SQLite driver's worker threads finish calls
    that tasks cancelled at shutdown had in flight, before the test's event loop closes."""
    try:
        async with app.router.lifespan_context(app):
            yield app
    finally:
        await asyncio.sleep(0.2)


@pytest.fixture
async def stack(backend_settings: Settings) -> AsyncIterator[Stack]:
    settings = backend_settings
    app = create_app(settings)
    clock = FakeClock()
    async with running(app):
        default = app.state.user_api
        await default.close()
        container = app.state.container
        users = UserApi.build(settings, container.db, container.graphs, clock=clock)
        app.state.user_api = users
        s = Stack(app, clock, users, settings)
        try:
            yield s
        finally:
            for c in s.clients:
                await c.aclose()
            await users.close()


# -- the spec's fixture -------------------------------------------------------------------------------


@dataclass
class World:
    """Ann owner of W (current), not of W2; Bob member of W2; A, C, D (API off) in W; E in W2."""

    ann: Any
    bob: Any
    w: Any
    w2: Any
    a: str
    c: str
    d: str
    e: str


async def build_world(stack: Stack) -> World:
    accounts = stack.users.accounts
    w_name, w2_name = unique_name("W"), unique_name("W2")
    ann, w = await accounts.create_account(
        f"{unique_name('ann')}@example.com", PASSWORD, name="Ann", workspace=w_name
    )
    bob, w2 = await accounts.create_account(
        f"{unique_name('bob')}@example.com", PASSWORD, name="Bob", workspace=w2_name
    )
    apps = AppService(stack.app.state.container.db)
    a_yml = (FIXTURES / "app_a.yml").read_text()
    a = (await apps.import_app(a_yml, tenant_id=w.id, created_by=ann.id)).app_id
    c = (
        await apps.import_app((FIXTURES / "chat_c.yml").read_text(), tenant_id=w.id, created_by=ann.id)
    ).app_id
    d = (await apps.import_app(a_yml, tenant_id=w.id, created_by=ann.id)).app_id
    await stack.users.console.set_api(ann.id, d, False)
    e = (await apps.import_app(a_yml, tenant_id=w2.id, created_by=bob.id)).app_id
    return World(ann, bob, w, w2, a, c, d, e)


async def console_login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> str:
    """Sign in through the console API; returns the CSRF token (the cookie stays in the client)."""
    resp = await client.post("/console/api/login", json={"email": email, "password": password})
    assert resp.status_code == 200, resp.text
    return str(resp.json()["csrf_token"])


async def device_token(
    stack: Stack, console: httpx.AsyncClient, csrf: str, label: str = "difyctl on h1"
) -> dict[str, Any]:
    """The whole device flow: code, approval by the console session, first poll → token body."""
    device = stack.client()
    code = (
        await device.post(
            "/openapi/v1/oauth/device/code", json={"client_id": "difyctl", "device_label": label}
        )
    ).json()
    approved = await console.post(
        "/openapi/v1/oauth/device/approve",
        json={"user_code": code["user_code"]},
        headers={"X-CSRF-Token": csrf},
    )
    assert approved.status_code == 200, approved.text
    polled = await device.post(
        "/openapi/v1/oauth/device/token", json={"device_code": code["device_code"], "client_id": "difyctl"}
    )
    assert polled.status_code == 200, polled.text
    return dict(polled.json())


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_canonical(
    resp: httpx.Response, status: int, code: str, message: str | None = None
) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body: dict[str, Any] = resp.json()
    assert {"code", "message", "status"} <= set(body) <= {"code", "message", "status", "hint", "details"}, (
        body
    )
    assert body["code"] == code and body["status"] == status, body
    if message is not None:
        assert body["message"] == message, body
    return body

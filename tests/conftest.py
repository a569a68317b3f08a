from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from tests.support.services import pg_admin_url, redis_url, unique_name


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session; yields its SQLAlchemy asyncpg URL."""
    admin = _asyncpg_dsn(pg_admin_url())
    name = unique_name("sluice_test")

    async def _run(sql: str) -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(_run(f'CREATE DATABASE "{name}"'))
    base = admin.rsplit("/", 1)[0]
    yield f"{base.replace('postgresql://', 'postgresql+asyncpg://', 1)}/{name}"
    asyncio.run(_run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def redis_server_url() -> str:
    return redis_url()


@pytest.fixture
async def redis_client(redis_server_url: str) -> AsyncIterator[object]:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(redis_server_url)
    yield client
    await client.aclose()


@pytest.fixture(scope="session", params=["embedded", "distributed"])
def live_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A running Sluice in each mode: embedded (SQLite, in-memory log, in-process runner) and
    distributed (PostgreSQL, Redis Streams, a separate arq worker process)."""
    from tests.support.servers import launch

    mode = request.param
    tmp = tmp_path_factory.mktemp(f"live-{mode}")
    database_url = redis = None
    if mode == "distributed":
        database_url = request.getfixturevalue("postgres_database")
        redis = request.getfixturevalue("redis_server_url")
    server = launch(mode, tmp, database_url, redis, unique_name("t"))
    yield server
    server.stop_all()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite the golden event logs of tests/golden instead of comparing with them",
    )

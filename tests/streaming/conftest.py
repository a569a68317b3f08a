"""Servers of the streaming tests: real ``sluice serve`` (and workers) with short intervals.

Each distributed server gets a PostgreSQL database of its own, because its reaper scans every
try in the database and must not adopt another test server's runs. A module may set
``SERVER_ENV`` (extra settings) and ``WORKERS`` (worker processes in distributed mode).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text

from sluice.adapters.sql.db import create_engine
from tests.streaming.support import launch, private_database
from tests.support.servers import LiveServer


@pytest.fixture(scope="module", params=["embedded", "distributed"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    yield from serve(request, tmp_path_factory, request.param)


def serve(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, mode: str
) -> Iterator[LiveServer]:
    env = dict(getattr(request.module, "SERVER_ENV", {}))
    workers = int(getattr(request.module, "WORKERS", 1))
    with contextlib.ExitStack() as stack:
        database_url = redis_url = None
        if mode == "distributed":
            database_url = stack.enter_context(
                contextlib.contextmanager(private_database)(request.getfixturevalue("postgres_database"))
            )
            redis_url = request.getfixturevalue("redis_server_url")
        tmp = tmp_path_factory.mktemp(f"stream-{mode}")
        srv = launch(mode, tmp, database_url=database_url, redis_url=redis_url, env=env, workers=workers)
        stack.callback(srv.stop_all)
        yield srv


def sql(server: LiveServer, statement: str, **params: Any) -> list[Any]:
    """Run one statement against the server's database; rows of a SELECT."""

    async def go() -> list[Any]:
        engine = create_engine(server.env.get("SLUICE_DATABASE_URL") or sqlite_url(server))
        try:
            async with engine.begin() as conn:
                result = await conn.execute(text(statement), params)
                return list(result.fetchall()) if result.returns_rows else []
        finally:
            await engine.dispose()

    return asyncio.run(go())


def sqlite_url(server: LiveServer) -> str:
    return f"sqlite+aiosqlite:///{server.env['SLUICE_DATA_DIR']}/sluice.db"

"""Service-level fixtures: the in-process harness over SQLite and over PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.human_input.harness import Harness, open_harness
from tests.human_input.smtp import SmtpCapture
from tests.support.servers import LiveServer, free_port, server_env
from tests.support.services import unique_name


@pytest.fixture(params=["sqlite", "postgresql"])
def hx_database(request: pytest.FixtureRequest) -> str | None:
    """``None`` (SQLite in the data directory) or the session's PostgreSQL database."""
    return str(request.getfixturevalue("postgres_database")) if request.param == "postgresql" else None


@pytest.fixture
async def hx(hx_database: str | None, tmp_path: Path) -> AsyncIterator[Harness]:
    async for harness in open_harness(tmp_path, hx_database):
        yield harness


@pytest.fixture(scope="session")
def smtp_capture() -> Iterator[SmtpCapture]:
    capture = SmtpCapture().start()
    yield capture
    capture.stop()


@pytest.fixture(scope="session", params=["embedded", "distributed"])
def hitl_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, smtp_capture: SmtpCapture
) -> Iterator[LiveServer]:
    """A Sluice in each mode that mails forms to the local SMTP capture (links on its own URL)."""
    mode = request.param
    tmp = tmp_path_factory.mktemp(f"hitl-{mode}")
    database_url = redis = None
    if mode == "distributed":
        database_url = request.getfixturevalue("postgres_database")
        redis = request.getfixturevalue("redis_server_url")
    port = free_port()
    env = server_env(mode, tmp / "data", database_url, redis, unique_name("hitl"), port)
    base = f"http://127.0.0.1:{port}"
    env.update(
        SLUICE_PUBLIC_URL=base,
        SLUICE_HUMAN_INPUT__SMTP_SERVER="127.0.0.1",
        SLUICE_HUMAN_INPUT__SMTP_PORT=str(smtp_capture.port),
        SLUICE_HUMAN_INPUT__EMAIL_RETRY_DELAYS_SECONDS="[0.2, 0.2]",
        SLUICE_STREAMING__ENQUEUE_GRACE_SECONDS="2",
        SLUICE_STREAMING__REAPER_INTERVAL_SECONDS="0.5",
    )
    server = LiveServer(mode, base, env, tmp)
    server.cli("db", "upgrade")
    start_processes(server)
    yield server
    server.stop_all()


def start_processes(server: LiveServer) -> None:
    server.start("serve", "serve")
    if server.mode == "distributed":
        server.start("worker", "worker")
    try:
        server.wait_healthy(timeout=120)  # imports alone take 15 s on a loaded 2-core machine
    except BaseException:
        server.stop_all()
        raise

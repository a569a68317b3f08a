"""schemathesis against ``/openapi.json`` of a live embedded server, on the Service API and the
user API: no 5xx, and every response matches the status codes, media types and schemas the
document declares. Bounded examples keep it around a minute."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.openapi_user.live import LiveWorld, build_live_world
from tests.support.servers import LiveServer, free_port, server_env
from tests.support.services import unique_name

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A private embedded server without the per-token limit, so generated calls reach handlers."""
    tmp = tmp_path_factory.mktemp("fuzz")
    port = free_port()
    env = server_env("embedded", tmp / "data", None, None, unique_name("fz"), port)
    env["SLUICE_OPENAPI__RATE_LIMIT_PER_TOKEN"] = "0"
    server = LiveServer("embedded", f"http://127.0.0.1:{port}", env, tmp)
    server.cli("db", "upgrade")
    server.start("serve", "serve")
    try:
        server.wait_healthy()
        yield server
    finally:
        server.stop_all()


def schemathesis(server: LiveServer, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    tool = Path(sys.executable).parent / "schemathesis"
    command = [
        str(tool),
        "run",
        server.base_url + "/openapi.json",
        "--checks",
        CHECKS,
        "--max-examples",
        "8",
        "--phases",
        "examples,fuzzing",
        "--seed",
        "20261130",
        "--request-timeout",
        "30",
        "--no-color",
        "--report-dir",
        str(tmp),
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp)


def test_user_api_conforms(fuzz_server: LiveServer, tmp_path: Path) -> None:
    world: LiveWorld = build_live_world(fuzz_server)
    result = schemathesis(
        fuzz_server,
        tmp_path,
        "--include-path-regex",
        "^/openapi/v1/",
        "--exclude-operation-id",
        "revoke_current_session",
        "--exclude-operation-id",
        "revoke_account_session",  # a generated "self" would revoke the token under test
        "--header",
        f"Authorization: Bearer {world.ann_token}",
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "No issues found" in result.stdout or "passed" in result.stdout.lower(), result.stdout[-3000:]


def test_service_api_conforms(fuzz_server: LiveServer, tmp_path: Path) -> None:
    app_id = fuzz_server.import_app(Path(__file__).parent.parent / "fixtures" / "app_a.yml")
    key = fuzz_server.create_key(app_id)
    result = schemathesis(
        fuzz_server, tmp_path, "--include-path-regex", "^/v1/", "--header", f"Authorization: Bearer {key}"
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]

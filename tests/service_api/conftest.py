"""Fixtures of the Service API suite: a real S3-compatible server (moto in server mode) and a Sluice
in each mode configured for these tests (an extension blacklist, one live run per app, the local
test HTTP server allowed through the SSRF guard, S3 storage in distributed mode)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from tests.support.servers import LiveServer, free_port, server_env
from tests.support.services import unique_name

FIXTURES = Path(__file__).parent / "fixtures"
SHARED_FIXTURES = Path(__file__).parent.parent / "fixtures"


@dataclass
class MotoServer:
    url: str
    proc: subprocess.Popen[bytes]


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    port = free_port()
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(url, timeout=1)
            break
        except httpx.HTTPError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("moto server did not start") from None
            time.sleep(0.1)
    yield MotoServer(url, proc)
    proc.terminate()
    proc.wait(10)
    log.close()


def s3_env(moto: MotoServer, bucket: str) -> dict[str, str]:
    return {
        "SLUICE_FILES__STORAGE": "s3",
        "SLUICE_FILES__S3_BUCKET": bucket,
        "SLUICE_FILES__S3_ENDPOINT_URL": moto.url,
        "SLUICE_FILES__S3_REGION": "us-east-1",
        "SLUICE_FILES__S3_ACCESS_KEY": "testing",
        "SLUICE_FILES__S3_SECRET_KEY": "testing",
    }


def create_bucket(moto: MotoServer, bucket: str) -> None:
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=moto.url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket=bucket)
    client.close()


@pytest.fixture(scope="session", params=["embedded", "distributed"])
def svc(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, moto_server: MotoServer
) -> Iterator[LiveServer]:
    """A Sluice configured for this suite, in each mode (distributed: uploads in S3)."""
    mode = request.param
    tmp = tmp_path_factory.mktemp(f"svc-{mode}")
    database_url = redis = None
    if mode == "distributed":
        database_url = request.getfixturevalue("postgres_database")
        redis = request.getfixturevalue("redis_server_url")
    port = free_port()
    env = server_env(mode, tmp / "data", database_url, redis, unique_name("s9"), port)
    env.update(
        SLUICE_API__UPLOAD_FILE_EXTENSION_BLACKLIST="bat,.cmd",
        SLUICE_API__APP_MAX_ACTIVE_REQUESTS="1",
        SLUICE_IO__HTTP_ALLOWED_HOSTS="127.0.0.1",
        SLUICE_IO__CODE_WALL_TIME_S="600",  # the slow app sleeps until it is stopped
    )
    if mode == "distributed":
        bucket = unique_name("sluice").replace("_", "-").lower()
        create_bucket(moto_server, bucket)
        env.update(s3_env(moto_server, bucket))
    server = LiveServer(mode, f"http://127.0.0.1:{port}", env, tmp)
    server.cli("db", "upgrade")
    server.start("serve", "serve")
    if mode == "distributed":
        server.start("worker", "worker")
    try:
        server.wait_healthy(timeout=120)
    except BaseException:
        server.stop_all()
        raise
    yield server
    server.stop_all()


@dataclass
class Keys:
    app_id: str
    key: str


def app_key(server: LiveServer, path: Path) -> Keys:
    app_id = server.import_app(path)
    return Keys(app_id, server.create_key(app_id))


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def assert_error(resp: httpx.Response, status: int, code: str, message: str | None = None) -> None:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"code", "message", "status"}, body
    assert body["code"] == code and body["status"] == status, body
    if message is not None:
        assert body["message"] == message, body

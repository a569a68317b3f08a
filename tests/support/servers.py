"""Real Sluice processes for end-to-end tests: ``sluice serve`` (and ``sluice worker`` in
distributed mode) started as subprocesses against real SQLite/PostgreSQL and Redis."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sluice_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "sluice.cli.main", *args]


@dataclass
class LiveServer:
    mode: str
    base_url: str
    env: dict[str, str]
    log_dir: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(sluice_cmd(*args), env=self.env, capture_output=True, text=True, timeout=120)
        if check and result.returncode != 0:
            raise AssertionError(f"sluice {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result

    def import_app(self, path: Path | str) -> str:
        return self.cli("apps", "import", str(path)).stdout.strip().splitlines()[-1]

    def create_key(self, app_id: str) -> str:
        return self.cli("keys", "create", app_id).stdout.strip().splitlines()[-1]

    def start(self, name: str, *args: str) -> None:
        log = open(self.log_dir / f"{name}.log", "ab")
        self.procs[name] = subprocess.Popen(sluice_cmd(*args), env=self.env, stdout=log, stderr=log)

    def wait_healthy(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited early:\n{self.logs(name)}")
            try:
                if httpx.get(self.base_url + "/_health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server not healthy in {timeout}s:\n{self.logs('serve')}")

    def logs(self, name: str) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace")[-5000:] if path.exists() else ""

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)


def server_env(
    mode: str, data_dir: Path, database_url: str | None, redis_url: str | None, prefix: str, port: int
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_") or k.startswith("SLUICE_TEST")}
    env.update(
        SLUICE_MODE=mode,
        SLUICE_DATA_DIR=str(data_dir),
        SLUICE_DEMO_APP="false",
        SLUICE_PORT=str(port),
        SLUICE_LOG_LEVEL="warning",
        SLUICE_STREAMING__REDIS_KEY_PREFIX=prefix,
        SLUICE_STREAMING__ARQ_QUEUE_NAME=f"{prefix}:queue",
        SLUICE_STREAMING__ARQ_POLL_DELAY_SECONDS="0.05",
    )
    if mode == "distributed":
        assert database_url and redis_url
        env.update(
            SLUICE_DATABASE_URL=database_url, SLUICE_REDIS_URL=redis_url, SLUICE_SECRET_KEY="test-secret"
        )
    return env


def launch(mode: str, tmp: Path, database_url: str | None, redis_url: str | None, prefix: str) -> LiveServer:
    port = free_port()
    env = server_env(mode, tmp / "data", database_url, redis_url, prefix, port)
    server = LiveServer(mode, f"http://127.0.0.1:{port}", env, tmp)
    server.cli("db", "upgrade")
    server.start("serve", "serve")
    if mode == "distributed":
        server.start("worker", "worker")
    try:
        server.wait_healthy()
    except BaseException:
        server.stop_all()
        raise
    return server

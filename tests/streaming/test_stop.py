"""Stop (streaming spec §7; §11 scenarios 15, 18, 27 in part), in embedded and distributed mode.

Latency is measured by ``bench/stop_latency.py``; these tests check what a stop does: the node
is cancelled (its sandbox process is gone), ``node_finished(stopped)`` and ``workflow_finished
(stopped)`` reach the stream, nothing runs after, and a stop before start ends the run at once.
"""

from __future__ import annotations

import subprocess
import threading
import time
from typing import Any

import httpx
import pytest

from tests.streaming.support import App, Frame, SSEParser, chain_dsl, data_frames, import_app, read_events
from tests.support.servers import LiveServer

# one try at a time: a second run stays queued behind a running one (scenario 18)
SERVER_ENV = {
    "SLUICE_STREAMING__EMBEDDED_MAX_CONCURRENT_TRIES": "1",
    "SLUICE_STREAMING__WORKER_MAX_JOBS": "1",
}


@pytest.fixture(scope="module")
def app(server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> App:
    return import_app(server, tmp_path_factory.mktemp("stop"), chain_dsl(3, slow={2: 60}), "stop")


class Reader:
    """A streaming run read by a thread, frames time-stamped as they arrive."""

    def __init__(self, server: LiveServer, app: App) -> None:
        self.frames: list[tuple[float, Frame]] = []
        self.headers: dict[str, str] = {}
        self._opened = threading.Event()
        self._server, self._app = server, app
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        assert self._opened.wait(60)

    def _read(self) -> None:
        body = {"inputs": {"query": "x"}, "response_mode": "streaming", "user": "u1"}
        parser = SSEParser()
        with (
            httpx.Client(base_url=self._server.base_url, timeout=120) as client,
            client.stream("POST", "/v1/workflows/run", json=body, headers=self._app.headers) as resp,
        ):
            self.headers = dict(resp.headers)
            self._opened.set()
            for chunk in resp.iter_raw():
                now = time.monotonic()
                self.frames += [(now, f) for f in parser.feed(chunk)]

    def wait_for(self, event: str, node: str | None = None, timeout: float = 60) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for at, frame in self.frames:
                if (
                    frame.data
                    and frame.data["event"] == event
                    and node in (None, frame.data["data"].get("node_id"))
                ):
                    return at
            time.sleep(0.02)
        raise AssertionError(f"no {event} {node or ''} in {[f.name for _, f in self.frames]}")

    def events(self) -> list[tuple[str, Any, Any]]:
        return [
            (f.data["event"], f.data["data"].get("node_id"), f.data["data"].get("status"))
            for _, f in self.frames
            if f.data
        ]


def stop(client: httpx.Client, app: App, task_id: str) -> httpx.Response:
    return client.post(f"/v1/workflows/tasks/{task_id}/stop", json={"user": "u1"}, headers=app.headers)


def sandbox_children(server: LiveServer) -> list[str]:
    """Processes started by the process that runs the nodes (the sandbox's ``python3`` children)."""
    runner = server.procs.get("worker0") or server.procs["serve"]
    out = subprocess.run(["pgrep", "-P", str(runner.pid)], capture_output=True, text=True).stdout
    return out.split()


def test_stop_a_node_sleeping_60s(server: LiveServer, app: App) -> None:
    """Scenario 15: the stop answers at once; ``node_finished(stopped)`` and ``workflow_finished
    (stopped)`` arrive; the node's process is gone; no later node starts; pings kept the stream
    alive while the node was silent (scenario 27, in part)."""
    reader = Reader(server, app)
    reader.wait_for("node_started", "n2")
    time.sleep(2.5)  # silent for more than two ping intervals
    assert sandbox_children(server), "the code node's process should be running"
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        started = time.monotonic()
        resp = stop(client, app, reader.headers["x-task-id"])
        answered = time.monotonic() - started
        assert resp.status_code == 200 and resp.json() == {"result": "success"}
        terminal_at = reader.wait_for("workflow_finished")
        reader.thread.join(30)
        detail = client.get(
            f"/v1/workflows/run/{reader.headers['x-workflow-run-id']}", headers=app.headers
        ).json()
    events = reader.events()
    assert events[-2:] == [("node_finished", "n2", "stopped"), ("workflow_finished", None, "stopped")]
    assert ("node_started", "n3", None) not in events and ("node_started", "end", None) not in events
    assert detail["status"] == "stopped" and detail["error"] == "Stopped by user"
    deadline = time.monotonic() + 10
    while sandbox_children(server) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not sandbox_children(server), "the cancelled node's process must be killed"
    n2_started = reader.wait_for("node_started", "n2")
    pings = [at for at, f in reader.frames if f.event == "ping" and at > n2_started]
    assert len(pings) >= 2
    print(
        f"stop answered in {answered * 1000:.0f} ms; "
        f"terminal {1000 * (terminal_at - started):.0f} ms after the request"
    )


def test_stop_before_start(server: LiveServer, app: App) -> None:
    """Scenario 18: with the only slot busy, a second run waits queued; stopping it ends it
    ``stopped`` at once (``workflow_started``, ``workflow_finished``), and when its job finally
    runs it finds its try cancelled and adds nothing."""
    busy = Reader(server, app)
    busy.wait_for("node_started", "n2")
    waiting = Reader(server, app)
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        stop(client, app, waiting.headers["x-task-id"])
        waiting.wait_for("workflow_finished")
        waiting.thread.join(30)
        assert [e[0] for e in waiting.events()] == ["workflow_started", "workflow_finished"]
        assert waiting.events()[-1][2] == "stopped"
        stop(client, app, busy.headers["x-task-id"])  # frees the slot: the stopped run's job runs now
        busy.wait_for("workflow_finished")
        time.sleep(1.5)
        _, frames = read_events(client, app, waiting.headers["x-task-id"], {"cursor": "0-0"})
        assert [f.data["event"] for f in data_frames(frames)] == ["workflow_started", "workflow_finished"]
        detail = client.get(f"/v1/workflows/run/{waiting.headers['x-workflow-run-id']}", headers=app.headers)
        assert detail.json()["status"] == "stopped"

"""Crash recovery with real processes (streaming spec §8; §11 scenarios 20 and 24; must-show 2).

``kill -9`` of an arq worker in the middle of runs with slow nodes: every run ends, no node
recorded before the kill runs again, the interrupted node is reported ``node_retry`` and runs
once more on the other worker. ``kill -9`` of an embedded ``sluice serve``: after a restart the run
continues; an old offset gets a snapshot, then the live events to ``workflow_finished``.
Recovery times are printed (speed belongs to the benchmarks).
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.streaming.conftest import serve, sql
from tests.streaming.support import (
    App,
    Frame,
    SSEParser,
    chain_dsl,
    data_frames,
    import_app,
    read_events,
)
from tests.support.servers import LiveServer, free_port

WORKERS = 2
SLOW = {i: 1.5 for i in range(1, 6)}  # five 1.5 s code nodes


@pytest.fixture(scope="module")
def cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    yield from serve(request, tmp_path_factory, "distributed")


@pytest.fixture(scope="module")
def embedded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    yield from serve(request, tmp_path_factory, "embedded")


class Follower:
    """Follows a run through reconnects (the connection itself may die with the server)."""

    def __init__(self, server: LiveServer, app: App) -> None:
        self.server, self.app = server, app
        self.frames: list[tuple[float, Frame]] = []
        self.ids: dict[str, str] = {}
        self._opened = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self._opened.wait(60)

    def _run(self) -> None:
        body = {"inputs": {"query": "x"}, "response_mode": "streaming", "user": "u1"}
        last: str | None = None
        with httpx.Client(base_url=self.server.base_url, timeout=120) as client:
            while not self.done:
                try:
                    if last is None:
                        request = client.stream(
                            "POST", "/v1/workflows/run", json=body, headers=self.app.headers
                        )
                    else:
                        request = client.stream(
                            "GET",
                            f"/v1/workflow/{self.ids['task']}/events",
                            params={"user": "u1"},
                            headers={**self.app.headers, "Last-Event-ID": last},
                        )
                    with request as resp:
                        if resp.status_code != 200:
                            raise httpx.TransportError(f"status {resp.status_code}")
                        if last is None:
                            self.ids = {
                                "task": resp.headers["x-task-id"],
                                "run": resp.headers["x-workflow-run-id"],
                            }
                            self._opened.set()
                        parser = SSEParser()
                        for chunk in resp.iter_raw():
                            for frame in parser.feed(chunk):
                                self.frames.append((time.monotonic(), frame))
                                if frame.id is not None:
                                    last = frame.id
                except (httpx.TransportError, httpx.StreamError):
                    time.sleep(0.2)

    @property
    def done(self) -> bool:
        return any(f.data and f.data["event"] == "workflow_finished" for _, f in self.frames)

    def first(self, event: str, node: str | None = None) -> float | None:
        for at, frame in self.frames:
            if (
                frame.data
                and frame.data["event"] == event
                and node in (None, frame.data["data"].get("node_id"))
            ):
                return at
        return None


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def kill_tree(pid: int) -> None:
    for child in children(pid):
        os.kill(child, signal.SIGKILL)
    os.kill(pid, signal.SIGKILL)


def wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def executions(server: LiveServer, run_id: str) -> list[tuple[str, str, str]]:
    rows = sql(
        server,
        "SELECT node_id, status, id FROM workflow_node_executions"
        " WHERE workflow_run_id = :r ORDER BY created_at",
        r=run_id,
    )
    return [(str(a), str(b), str(c)) for a, b, c in rows]


def check_once(server: LiveServer, app: App, follower: Follower) -> list[str]:
    """The run succeeded; every node succeeded exactly once; retries are only the lost executions;
    the stored stream has one ``node_finished`` per execution and one ``workflow_finished``."""
    rows = executions(server, follower.ids["run"])
    succeeded = Counter(node for node, status, _ in rows if status == "succeeded")
    assert set(succeeded.values()) == {1}, rows
    assert {status for _, status, _ in rows} <= {"succeeded", "retry"}
    lost = [node for node, status, _ in rows if status == "retry"]
    with httpx.Client(base_url=server.base_url, timeout=60) as client:
        _, frames = read_events(client, app, follower.ids["task"], {"cursor": "0-0"})
    events = [f.data for f in data_frames(frames)]
    finished = Counter(e["data"]["id"] for e in events if e["event"] == "node_finished")
    assert set(finished.values()) == {1}
    assert [e["event"] for e in events].count("workflow_finished") == 1
    assert events[-1]["data"]["status"] == "succeeded"
    assert sorted(e["data"]["node_id"] for e in events if e["event"] == "node_retry") == sorted(lost)
    return lost


def test_worker_killed_mid_run(cluster: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Must-show 2 / scenario 20: four runs on two workers; the worker running node 3 of the first
    run is killed; every run ends ``succeeded``, nothing recorded runs twice."""
    app = import_app(cluster, tmp_path_factory.mktemp("kill"), chain_dsl(5, slow=SLOW), "kill")
    followers = [Follower(cluster, app) for _ in range(4)]
    wait(lambda: followers[0].first("node_started", "n3") is not None, 60, "node 3 of run 1")
    time.sleep(0.5)
    busy = [name for name in ("worker0", "worker1") if children(cluster.procs[name].pid)]
    assert busy, "a worker should be running a code node"
    victim = busy[0]
    killed_at = time.monotonic()
    kill_tree(cluster.procs.pop(victim).pid)
    for follower in followers:
        follower.thread.join(120)
        assert follower.done
    recovery = []
    lost_total = 0
    for follower in followers:
        lost = check_once(cluster, app, follower)
        lost_total += len(lost)
        retry_at = follower.first("node_retry")
        if lost:
            assert retry_at is not None
            recovery.append(retry_at - killed_at)
    assert lost_total >= 1, "the killed worker was running at least one node"
    print(
        f"worker kill: {lost_total} executions lost; "
        f"recovered after {', '.join(f'{r:.1f}s' for r in recovery)}"
    )
    cluster.start(victim, "worker")  # the module's later tests get both workers back


def test_embedded_restart_continues_the_run(
    embedded: LiveServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Scenario 24: ``kill -9`` of ``sluice serve`` mid-run; after the restart the run continues; an
    offset from before the crash gets a flagged snapshot, then live events to ``workflow_finished``."""
    app = import_app(embedded, tmp_path_factory.mktemp("restart"), chain_dsl(5, slow=SLOW), "restart")
    body = {"inputs": {"query": "x"}, "response_mode": "streaming", "user": "u1"}
    parser = SSEParser()
    with httpx.Client(base_url=embedded.base_url, timeout=60) as client:
        with client.stream("POST", "/v1/workflows/run", json=body, headers=app.headers) as resp:
            task_id, run_id = resp.headers["x-task-id"], resp.headers["x-workflow-run-id"]
            for chunk in resp.iter_raw():
                parser.feed(chunk)
                if any(f.data["data"].get("node_id") == "n2" for f in data_frames(parser.frames)):
                    break
        old_offset = data_frames(parser.frames)[1].id  # node_started of the start node
        time.sleep(0.5)
        killed_at = time.monotonic()
        kill_tree(embedded.procs.pop("serve").pid)
        embedded.start("serve", "serve")
        embedded.wait_healthy(timeout=120)
        resumed = SSEParser()
        with client.stream(
            "GET",
            f"/v1/workflow/{task_id}/events",
            params={"user": "u1"},
            headers={**app.headers, "Last-Event-ID": old_offset},
        ) as resp:
            assert resp.status_code == 200
            first_live: float | None = None
            for chunk in resp.iter_raw():
                for frame in resumed.feed(chunk):
                    if frame.data is not None and "snapshot" not in frame.data and first_live is None:
                        first_live = time.monotonic()
    frames = data_frames(resumed.frames)
    flagged = [f for f in frames if f.data.get("snapshot")]
    live = [f for f in frames if not f.data.get("snapshot")]
    assert flagged and flagged[0].data["event"] == "workflow_started"
    assert all(f.id is None for f in flagged[:-1])
    assert (
        live
        and live[-1].data["event"] == "workflow_finished"
        and live[-1].data["data"]["status"] == "succeeded"
    )
    assert all(f.id is not None for f in live)
    rows = executions(embedded, run_id)
    succeeded = Counter(node for node, status, _ in rows if status == "succeeded")
    assert set(succeeded.values()) == {1} and "end" in succeeded
    assert succeeded["n1"] == 1 and [r for r in rows if r[0] == "n1"] == [r for r in rows if r[0] == "n1"][:1]
    assert first_live is not None
    print(f"embedded restart: run continued {first_live - killed_at:.1f}s after the kill")


def test_worker_sigterm_hands_its_runs_back(
    cluster: LiveServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A worker told to stop drains ``WORKER_DRAIN_SECONDS`` (1 s here), then hands its try back:
    the other worker's reaper re-runs it at once and the run ends ``succeeded``."""
    app = import_app(cluster, tmp_path_factory.mktemp("drain"), chain_dsl(5, slow=SLOW), "drain")
    follower = Follower(cluster, app)
    wait(lambda: follower.first("node_started", "n2") is not None, 60, "node 2")
    busy = [name for name in ("worker0", "worker1") if children(cluster.procs[name].pid)]
    assert busy
    cluster.stop(busy[0], signal.SIGTERM, timeout=30)
    follower.thread.join(120)
    assert follower.done
    lost = check_once(cluster, app, follower)
    assert lost, "the drained worker's node ran again elsewhere"
    cluster.start(busy[0], "worker")


def test_api_shutdown_clients_resume_on_another_replica(
    cluster: LiveServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Scenario 28: SIGTERM one of two API replicas; its streams end with
    ``sluice_reconnect(server_shutdown)`` naming the last offset sent, and the client continues on
    the other replica without a gap or a duplicate."""
    app = import_app(cluster, tmp_path_factory.mktemp("replicas"), chain_dsl(5, slow=SLOW), "replicas")
    port = free_port()
    other = LiveServer(
        "distributed", f"http://127.0.0.1:{port}", {**cluster.env, "SLUICE_PORT": str(port)}, cluster.log_dir
    )
    other.start("serve", "serve")
    try:
        other.wait_healthy(timeout=120)
        body = {"inputs": {"query": "x"}, "response_mode": "streaming", "user": "u1"}
        parser = SSEParser()
        with httpx.Client(base_url=cluster.base_url, timeout=60) as client:
            with client.stream("POST", "/v1/workflows/run", json=body, headers=app.headers) as resp:
                task_id = resp.headers["x-task-id"]
                signalled = False
                for chunk in resp.iter_raw():
                    parser.feed(chunk)
                    if not signalled and any(
                        f.data["data"].get("node_id") == "n2" for f in data_frames(parser.frames)
                    ):
                        cluster.procs["serve"].send_signal(signal.SIGTERM)
                        signalled = True
        control = [f for f in parser.frames if f.event == "sluice_reconnect"]
        assert len(control) == 1 and control[0].data["reason"] == "server_shutdown"
        first = data_frames(parser.frames)
        assert control[0].data["last_event_id"] == first[-1].id
        with httpx.Client(base_url=other.base_url, timeout=60) as client:
            _, rest = read_events(client, app, task_id, **{"Last-Event-ID": str(first[-1].id)})
            _, everything = read_events(client, app, task_id, {"cursor": "0-0"})
        assert [f.raw for f in first + data_frames(rest)] == [f.raw for f in data_frames(everything)]
        assert data_frames(rest)[-1].data["data"]["status"] == "succeeded"
    finally:
        other.stop_all()
        cluster.stop("serve")
        cluster.start("serve", "serve")
        cluster.wait_healthy(timeout=120)

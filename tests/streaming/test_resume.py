"""Wire format, resume and the reconnect endpoint against real servers (streaming spec §11: 1, 2, 3,
4, 7, 12, 13 (API side), 16), in embedded and distributed mode."""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

import httpx
import httpx_sse
import pytest

from tests.streaming.conftest import sql
from tests.streaming.support import (
    App,
    Frame,
    SSEParser,
    chain_dsl,
    data_frames,
    import_app,
    read_events,
    start_stream,
)
from tests.support.servers import LiveServer

CURSOR_ERROR = "event cursor must be a Redis Stream ID such as '1712345678901-0'"
NOT_FOUND = {"code": "not_found", "message": "Workflow run not found", "status": 404}

ECHO_DSL = """version: 0.6.0
kind: app
app: {name: Echo, mode: workflow}
workflow:
  graph:
    nodes:
      - id: start
        data:
          type: start
          title: Start
          variables: [{variable: query, label: Query, type: paragraph, required: true}]
      - id: end
        data: {type: end, title: End, outputs: [{variable: text, value_selector: [start, query]}]}
    edges:
      - {id: e1, source: start, target: end}
"""


@pytest.fixture(scope="module")
def apps(server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, App]:
    tmp = tmp_path_factory.mktemp("apps")
    return {
        "three": import_app(server, tmp, chain_dsl(1), "three"),
        "chain": import_app(server, tmp, chain_dsl(8), "chain"),
        "slow": import_app(server, tmp, chain_dsl(3, slow={2: 1.0}), "slow"),
        "echo": import_app(server, tmp, ECHO_DSL, "echo"),
        "other": import_app(server, tmp, chain_dsl(1), "other"),
    }


@pytest.fixture
def client(server: LiveServer) -> httpx.Client:
    with httpx.Client(base_url=server.base_url, timeout=60) as c:
        yield c


def ids(frames: list[Frame]) -> list[str | None]:
    return [f.id for f in data_frames(frames)]


def names(frames: list[Frame]) -> list[str]:
    return [str(f.data["event"]) for f in data_frames(frames)]


def position(offset: str | None) -> tuple[int, int]:
    assert offset is not None
    ms, seq = offset.split("-")
    return int(ms), int(seq)


def full_log(client: httpx.Client, app: App, task_id: str) -> list[Frame]:
    """Every stored entry, replayed from ``0-0``."""
    resp, frames = read_events(client, app, task_id, {"cursor": "0-0"})
    assert resp.status_code == 200
    return data_frames(frames)


def test_happy_path_frames_headers_and_close(client: httpx.Client, apps: dict[str, App]) -> None:
    """Scenario 1."""
    app = apps["three"]
    body = {"inputs": {"query": "hi"}, "response_mode": "streaming", "user": "u1"}
    parser = SSEParser()
    with client.stream("POST", "/v1/workflows/run", json=body, headers=app.headers) as resp:
        assert resp.status_code == 200
        for chunk in resp.iter_raw():
            parser.feed(chunk)
        headers = resp.headers
    assert headers["content-type"] == "text/event-stream; charset=utf-8"
    assert headers["cache-control"] == "no-cache"
    assert headers["x-accel-buffering"] == "no"
    assert "content-length" not in headers and "content-encoding" not in headers
    uuid.UUID(headers["x-workflow-run-id"]), uuid.UUID(headers["x-task-id"])
    frames = parser.frames
    assert frames[0].raw == b"retry: 1000\nevent: ping"
    assert parser.buffer == b""  # closed right after the terminal frame
    got = [n for n in names(frames) if n != "text_chunk"]
    assert got == ["workflow_started", *["node_started", "node_finished"] * 3, "workflow_finished"]
    offsets = [position(i) for i in ids(frames)]
    assert offsets == sorted(offsets) and len(set(offsets)) == len(offsets)
    assert data_frames(frames)[-1].data["data"]["status"] == "succeeded"
    for frame in data_frames(frames):
        assert frame.data["workflow_run_id"] == headers["x-workflow-run-id"]
        assert frame.data["task_id"] == headers["x-task-id"]


def test_wire_format_two_parsers_pings_and_truncation(
    client: httpx.Client, apps: dict[str, App], server: LiveServer
) -> None:
    """Scenario 2: a line-based parser and httpx-sse agree; no CR; pings are exactly
    ``event: ping``; a 3 MiB output arrives as ``null`` + ``outputs_truncated`` while SQL keeps it."""
    app = apps["slow"]
    body = {"inputs": {"query": "hi"}, "response_mode": "streaming", "user": "u1"}
    with client.stream("POST", "/v1/workflows/run", json=body, headers=app.headers) as resp:
        raw = b"".join(resp.iter_raw())
        task_id = resp.headers["x-task-id"]
    assert b"\r" not in raw
    blocks = [b for b in raw.split(b"\n\n") if b]
    for block in blocks:
        if b"data: " not in block:
            assert block in (b"retry: 1000\nevent: ping", b"event: ping"), block
        else:
            assert block.count(b"\ndata: ") + block.startswith(b"data: ") == 1  # one data line per event
    assert any(b == b"event: ping" for b in blocks)  # the 1 s node outlasts the 1 s ping interval
    line_based = [json.loads(b.split(b"data: ", 1)[1]) for b in blocks if b"data: " in b]
    with httpx_sse.connect_sse(
        client,
        "GET",
        f"/v1/workflow/{task_id}/events",
        params={"user": "u1", "cursor": "0-0"},
        headers=app.headers,
    ) as source:
        via_lib = [json.loads(e.data) for e in source.iter_sse() if e.data]
    assert via_lib == line_based
    assert all({"event", "task_id", "workflow_run_id"} <= set(p) for p in line_based)

    big = "é" * (3 * 1024 * 1024 // 2)  # 3 MiB of UTF-8
    resp = client.post(
        "/v1/workflows/run",
        json={"inputs": {"query": big}, "response_mode": "streaming", "user": "u1"},
        headers=apps["echo"].headers,
    )
    events = [json.loads(line[6:]) for line in resp.text.split("\n") if line.startswith("data: ")]
    finished = [e for e in events if e["event"] == "node_finished"]
    assert finished and all(e["data"]["outputs"] is None and e["data"]["outputs_truncated"] for e in finished)
    detail = client.get(
        f"/v1/workflows/run/{resp.headers['x-workflow-run-id']}", headers=apps["echo"].headers
    )
    assert detail.json()["outputs"] == {"text": big}
    stored = sql(
        server,
        "SELECT outputs FROM workflow_node_executions WHERE workflow_run_id = :r AND node_id = 'end'",
        r=resp.headers["x-workflow-run-id"],
    )
    outputs = stored[0][0]
    assert (json.loads(outputs) if isinstance(outputs, str) else outputs) == {"text": big}


def test_blocking_and_a_client_that_drops(client: httpx.Client, apps: dict[str, App]) -> None:
    """Scenario 3: Dify's blocking body; a client dropping after 100 ms leaves the run to succeed,
    and the events endpoint then gives exactly one ``workflow_finished``."""
    app = apps["slow"]
    resp = client.post(
        "/v1/workflows/run", json={"inputs": {"query": "hi"}, "user": "u1"}, headers=app.headers
    )
    assert resp.status_code == 200
    body = resp.json()
    assert resp.headers["x-workflow-run-id"] == body["workflow_run_id"]
    assert set(body) == {"workflow_run_id", "task_id", "data"}
    assert body["data"]["status"] == "succeeded" and body["data"]["outputs"] == {"text": "hi1.3"}

    with pytest.raises(httpx.ReadTimeout):
        client.post(
            "/v1/workflows/run",
            json={"inputs": {"query": "drop"}, "user": "u1"},
            headers=app.headers,
            timeout=httpx.Timeout(60, read=0.1),
        )
    run_id = _latest_run(client, app)
    deadline = time.monotonic() + 30
    while (detail := client.get(f"/v1/workflows/run/{run_id}", headers=app.headers).json())[
        "status"
    ] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert detail["status"] == "succeeded"
    resp, frames = read_events(client, app, run_id)
    assert names(frames) == ["workflow_finished"] and data_frames(frames)[0].id is not None


def _latest_run(client: httpx.Client, app: App) -> str:
    rows = sql(
        app.server,
        "SELECT id FROM workflow_runs WHERE app_id = :a ORDER BY created_at DESC LIMIT 1",
        a=app.app_id,
    )
    return str(rows[0][0])


def test_disconnect_and_resume_by_offset(client: httpx.Client, apps: dict[str, App]) -> None:
    """Scenario 4: leave after the 2nd ``node_started``; the run succeeds; ``Last-Event-ID`` gets
    exactly the rest, ``?cursor=`` and ``?last_event_id=`` the same, the header wins; ``abc`` → 400."""
    app = apps["slow"]
    body = {"inputs": {"query": "hi"}, "response_mode": "streaming", "user": "u1"}
    parser = SSEParser()
    cut_at: str | None = None
    with client.stream("POST", "/v1/workflows/run", json=body, headers=app.headers) as resp:
        task_id = resp.headers["x-task-id"]
        for chunk in resp.iter_raw():
            parser.feed(chunk)
            started = [f for f in data_frames(parser.frames) if f.data["event"] == "node_started"]
            if len(started) >= 2:
                cut_at = started[1].id
                break
    assert cut_at is not None
    rest_header = read_events(client, app, task_id, **{"Last-Event-ID": cut_at})[1]
    everything = full_log(client, app, task_id)
    expected = [f.raw for f in everything if position(f.id) > position(cut_at)]
    assert [f.raw for f in data_frames(rest_header)] == expected
    assert names(rest_header)[-1] == "workflow_finished"
    assert everything[-1].data["data"]["status"] == "succeeded"
    by_cursor = read_events(client, app, task_id, {"cursor": cut_at})[1]
    by_alias = read_events(client, app, task_id, {"last_event_id": cut_at})[1]
    assert [f.raw for f in data_frames(by_cursor)] == expected == [f.raw for f in data_frames(by_alias)]
    first = everything[0].id
    header_wins = read_events(client, app, task_id, {"cursor": first}, **{"Last-Event-ID": cut_at})[1]
    assert [f.raw for f in data_frames(header_wins)] == expected
    for bad in ("abc", "1-2-3", "-1-0", "18446744073709551616-0", "1-"):
        resp, _ = read_events(client, app, task_id, {"cursor": bad})
        assert resp.status_code == 400
        assert resp.json() == {"code": "bad_request", "message": CURSOR_ERROR, "status": 400}
    resp, _ = read_events(client, app, task_id, **{"Last-Event-ID": "abc"})
    assert resp.status_code == 400


def test_finished_run_reconnects(client: httpx.Client, apps: dict[str, App]) -> None:
    """Scenario 7: an offset in retention → the rest, then close; no offset → one
    ``workflow_finished`` with its ``id:``; the terminal's own offset → that event flagged, no ``id:``."""
    app = apps["chain"]
    _, task_id, _ = start_stream(client, app, {"query": "x"})
    everything = full_log(client, app, task_id)
    middle = everything[len(everything) // 2]
    rest = data_frames(read_events(client, app, task_id, {"cursor": middle.id})[1])
    assert [f.raw for f in rest] == [f.raw for f in everything if position(f.id) > position(middle.id)]
    only = data_frames(read_events(client, app, task_id)[1])
    assert [f.raw for f in only] == [everything[-1].raw]
    _, frames = read_events(client, app, task_id, {"cursor": everything[-1].id})
    tail = data_frames(frames)
    assert len(tail) == 1 and tail[0].id is None
    assert tail[0].data["snapshot"] is True and tail[0].data["event"] == "workflow_finished"
    assert tail[0].data["data"]["status"] == "succeeded"


def test_lookup_and_ownership(client: httpx.Client, apps: dict[str, App], server: LiveServer) -> None:
    """Scenario 12: unknown, another user's or another app's run → 404; the run id works as a task
    id for events and stop; ``user`` is required; a non-workflow app → 400 ``not_workflow_app``."""
    app = apps["three"]
    run_id, task_id, _ = start_stream(client, app, {"query": "x"})
    for path_id, user, key_app in (
        (str(uuid.uuid4()), "u1", app),
        ("not-a-uuid", "u1", app),
        (task_id, "someone-else", app),
        (task_id, "u1", apps["other"]),
    ):
        resp, _ = read_events(client, key_app, path_id, {"user": user})
        assert resp.status_code == 404 and resp.json() == NOT_FOUND
    for path in (f"/v1/workflow/{run_id}/events", f"/v1/workflows/tasks/{run_id}/events"):
        resp = client.get(path, params={"user": "u1"}, headers=app.headers)
        assert resp.status_code == 200 and "workflow_finished" in resp.text
    resp = client.get(f"/v1/workflow/{task_id}/events", headers=app.headers)
    assert resp.status_code == 400 and resp.json()["message"] == "Arg user must be provided."
    stop = client.post(f"/v1/workflows/tasks/{run_id}/stop", json={"user": "u1"}, headers=app.headers)
    assert stop.json() == {"result": "success"}
    victim = apps["other"]
    sql(server, "UPDATE apps SET mode = 'chat' WHERE id = :a", a=victim.app_id)
    try:
        resp, _ = read_events(client, victim, task_id)
        assert resp.status_code == 400 and resp.json()["code"] == "not_workflow_app"
    finally:
        sql(server, "UPDATE apps SET mode = 'workflow' WHERE id = :a", a=victim.app_id)


def test_missing_input_creates_no_run(client: httpx.Client, apps: dict[str, App], server: LiveServer) -> None:
    """Scenario 13, API side: a rejected input is a 400 and leaves no run row."""
    app = apps["echo"]
    count = "SELECT count(*) FROM workflow_runs WHERE app_id = :a"
    before = sql(server, count, a=app.app_id)[0][0]
    resp = client.post(
        "/v1/workflows/run",
        json={"inputs": {}, "response_mode": "streaming", "user": "u1"},
        headers=app.headers,
    )
    assert resp.status_code == 400 and resp.json()["code"] == "invalid_param"
    assert sql(server, count, a=app.app_id)[0][0] == before


def test_stop_is_idempotent(client: httpx.Client, apps: dict[str, App]) -> None:
    """Scenario 16: a finished run → success, nothing changes; two stops of a live run → one
    ``workflow_finished``; an unknown id → success."""
    app = apps["slow"]
    run_id, task_id, frames = start_stream(client, app, {"query": "x"})
    before = client.get(f"/v1/workflows/run/{run_id}", headers=app.headers).json()
    stop = client.post(f"/v1/workflows/tasks/{task_id}/stop", json={"user": "u1"}, headers=app.headers)
    assert stop.status_code == 200 and stop.json() == {"result": "success"}
    assert client.get(f"/v1/workflows/run/{run_id}", headers=app.headers).json() == before
    assert len(full_log(client, app, task_id)) == len(data_frames(frames))

    live = _start_in_background(client, app)
    task_id = live["task_id"]
    for _ in range(2):
        resp = client.post(f"/v1/workflows/tasks/{task_id}/stop", json={"user": "u1"}, headers=app.headers)
        assert resp.json() == {"result": "success"}
    live["thread"].join(30)
    terminals = [f for f in full_log(client, app, task_id) if f.data["event"] == "workflow_finished"]
    assert len(terminals) == 1 and terminals[0].data["data"]["status"] == "stopped"
    resp = client.post(f"/v1/workflows/tasks/{uuid.uuid4()}/stop", json={"user": "u1"}, headers=app.headers)
    assert resp.json() == {"result": "success"}


def _start_in_background(client: httpx.Client, app: App) -> dict[str, Any]:
    """A streaming run read by a thread; returns once its first node runs."""
    state: dict[str, Any] = {"frames": []}
    ready = threading.Event()

    def read() -> None:
        body = {"inputs": {"query": "x"}, "response_mode": "streaming", "user": "u1"}
        parser = SSEParser()
        with (
            httpx.Client(base_url=str(client.base_url), timeout=60) as own,
            own.stream("POST", "/v1/workflows/run", json=body, headers=app.headers) as resp,
        ):
            state["task_id"] = resp.headers["x-task-id"]
            for chunk in resp.iter_raw():
                parser.feed(chunk)
                if any(f.data and f.data["event"] == "node_started" for f in parser.frames):
                    ready.set()
        state["frames"] = parser.frames
        ready.set()

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    assert ready.wait(30)
    state["thread"] = thread
    return state

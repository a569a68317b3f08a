"""Runs through the user API against live servers in both modes (openapi-user.md §8.10–8.12;
acceptance scenarios 20–24)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.openapi_user.live import LiveWorld, build_live_world
from tests.support.servers import LiveServer
from tests.support.sse import parse_sse

P = "/openapi/v1"


@pytest.fixture(scope="module")
def world(live_server: LiveServer) -> LiveWorld:
    return build_live_world(live_server)


@pytest.fixture
def ann(world: LiveWorld) -> Iterator[httpx.Client]:
    with world.client(world.ann_token) as client:
        yield client


def events(text: str) -> list[dict[str, object]]:
    return [f.data for f in parse_sse(text) if f.data is not None]


def canonical(resp: httpx.Response, status: int, code: str, message: str | None = None) -> dict[str, object]:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["code"] == code and body["status"] == status, body
    if message is not None:
        assert body["message"] == message, body
    return dict(body)


def test_run_streams_and_is_logged_scenario_20(world: LiveWorld, ann: httpx.Client) -> None:
    body = {"inputs": {"query": "hi"}, "user": "ignored", "response_mode": "blocking"}
    with ann.stream("POST", f"{P}/apps/{world.a}/run", json=body) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        text = resp.read().decode()
    names = [e["event"] for e in events(text)]
    assert names[0] == "workflow_started" and names[-1] == "workflow_finished"
    finished = events(text)[-1]
    assert finished["data"]["status"] == "succeeded" and finished["data"]["outputs"] == {
        "text": "You said hi"
    }
    run_id = finished["workflow_run_id"]
    key = world.server.create_key(world.a)
    logs = httpx.get(
        world.server.base_url + "/v1/workflows/logs", headers={"Authorization": f"Bearer {key}"}, timeout=30
    ).json()
    item = next(i for i in logs["data"] if i["workflow_run"]["id"] == run_id)
    assert item["created_from"] == "openapi" and item["created_by_role"] == "account"
    assert item["created_by_account"]["id"] == world.ann_id and item["created_by_end_user"] is None


def test_run_validation_scenario_21(world: LiveWorld, ann: httpx.Client) -> None:
    url = f"{P}/apps/{world.a}/run"
    missing = canonical(ann.post(url, json={}), 422, "invalid_param", "Request validation failed")
    assert missing["details"][0]["loc"] == ["inputs"]
    canonical(
        ann.post(url, content='{"inputs":', headers={"Content-Type": "application/json"}),
        400,
        "bad_request",
        "Invalid JSON payload received or JSON payload is empty.",
    )
    empty = canonical(
        ann.post(url, json={"inputs": {}}), 400, "invalid_param", "query is required in input form"
    )
    assert empty["details"] == [
        {"type": "value_error", "loc": ["inputs", "query"], "msg": "query is required in input form"}
    ]
    canonical(
        ann.post(url, json={"inputs": {"query": 5}}),
        400,
        "invalid_param",
        "(type 'paragraph') query in input form must be a string",
    )
    canonical(
        ann.post(url, json={"inputs": {"query": "hi", "color": "blue"}}),
        400,
        "invalid_param",
        "color in input form must be one of the following: ['red', 'green']",
    )
    canonical(
        ann.post(url, json={"inputs": {"query": "01234567890"}}),
        400,
        "invalid_param",
        "query in input form must be less than 10 characters",
    )
    canonical(
        ann.post(url, json={"inputs": {"query": "hi"}, "query": "x"}),
        422,
        "invalid_param",
        "query_not_supported_for_workflow",
    )
    canonical(
        ann.post(url, json={"inputs": {"query": "hi"}, "workspace_id": world.w2}),
        422,
        "invalid_param",
        "workspace_id does not match app's workspace",
    )
    canonical(ann.post(url, json={"inputs": {"query": "hi"}, "workflow_id": "nope"}), 400, "bad_request")
    canonical(
        ann.post(
            url, json={"inputs": {"query": "hi"}, "workflow_id": "00000000-0000-0000-0000-000000000000"}
        ),
        404,
        "not_found",
        "Workflow not found",
    )


def test_chat_run_needs_a_query_scenario_22(world: LiveWorld, ann: httpx.Client) -> None:
    url = f"{P}/apps/{world.c}/run"
    canonical(ann.post(url, json={"inputs": {}}), 422, "invalid_param", "query_required_for_chat")
    canonical(
        ann.post(url, json={"inputs": {}, "query": "  "}), 422, "invalid_param", "query_required_for_chat"
    )
    canonical(
        ann.post(url, json={"inputs": {}, "query": "hi", "conversation_id": "abc"}),
        422,
        "invalid_param",
        "conversation_id must be a valid UUID",
    )


def run_to_end(client: httpx.Client, app_id: str, inputs: dict[str, object]) -> list[dict[str, object]]:
    with client.stream("POST", f"{P}/apps/{app_id}/run", json={"inputs": inputs}) as resp:
        assert resp.status_code == 200
        return events(resp.read().decode())


def test_task_events_scenario_23(world: LiveWorld, ann: httpx.Client) -> None:
    stream = run_to_end(ann, world.a, {"query": "hi"})
    task_id = stream[0]["task_id"]
    resp = ann.get(f"{P}/apps/{world.a}/tasks/{task_id}/events")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
    replay = events(resp.text)
    assert [e["event"] for e in replay] == ["workflow_finished"]
    assert replay[0]["data"]["status"] == "succeeded"

    with ann.stream("POST", f"{P}/apps/{world.a}/run", json={"inputs": {"query": "yo"}}) as live:
        frames = [f for f in parse_sse(live.read().decode()) if f.data is not None]
    middle = frames[2]
    resumed = ann.get(
        f"{P}/apps/{world.a}/tasks/{frames[0].data['workflow_run_id']}/events",
        headers={"Last-Event-ID": middle.id},
    )
    assert [f.id for f in parse_sse(resumed.text) if f.data is not None] == [f.id for f in frames[3:]]
    canonical(
        ann.get(f"{P}/apps/{world.a}/tasks/{task_id}/events", headers={"Last-Event-ID": "nope"}),
        400,
        "bad_request",
        "event cursor must be a Redis Stream ID such as '1712345678901-0'",
    )

    key = world.server.create_key(world.a)
    v1 = httpx.post(
        world.server.base_url + "/v1/workflows/run",
        json={"inputs": {"query": "hi"}, "user": "u1"},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    ).json()
    for ref in (v1["task_id"], v1["workflow_run_id"], "00000000-0000-0000-0000-000000000000"):
        canonical(
            ann.get(f"{P}/apps/{world.a}/tasks/{ref}/events"), 404, "not_found", "Workflow run not found"
        )
    # another app's run is not reachable through this app
    canonical(ann.get(f"{P}/apps/{world.c}/tasks/{task_id}/events"), 404, "not_found")


def start_slow(client: httpx.Client, app_id: str) -> tuple[str, list[dict[str, object]], threading.Thread]:
    """Start a run that sleeps in a code node; read its stream in a thread until it ends."""
    seen: list[dict[str, object]] = []
    started = threading.Event()

    def read() -> None:
        with client.stream("POST", f"{P}/apps/{app_id}/run", json={"inputs": {"seconds": 8}}) as resp:
            buffer = ""
            for chunk in resp.iter_text():
                buffer += chunk
                while "\n\n" in buffer:
                    block, buffer = buffer.split("\n\n", 1)
                    for line in block.split("\n"):
                        if line.startswith("data: "):
                            seen.append(json.loads(line[6:]))
                            started.set()

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    assert started.wait(30)
    return str(seen[0]["task_id"]), seen, thread


def test_stop_scenario_24(world: LiveWorld, ann: httpx.Client) -> None:
    with world.client(world.ann_token) as reader:
        task_id, seen, thread = start_slow(reader, world.slow)
        resp = ann.post(f"{P}/apps/{world.slow}/tasks/{task_id}/stop")
        assert resp.status_code == 200 and resp.json() == {"result": "success"}
        thread.join(30)
    assert seen[-1]["event"] == "workflow_finished" and seen[-1]["data"]["status"] == "stopped"

    key = world.server.create_key(world.slow)
    seen_v1: list[dict[str, object]] = []
    with httpx.Client(base_url=world.server.base_url, timeout=60) as end_user:
        with end_user.stream(
            "POST",
            "/v1/workflows/run",
            json={"inputs": {"seconds": 3}, "user": "u1", "response_mode": "streaming"},
            headers={"Authorization": f"Bearer {key}"},
        ) as live:
            for line in live.iter_lines():
                if line.startswith("data: "):
                    seen_v1.append(json.loads(line[6:]))
                    if len(seen_v1) == 1:
                        stop = ann.post(f"{P}/apps/{world.slow}/tasks/{seen_v1[0]['task_id']}/stop")
                        assert stop.status_code == 200 and stop.json() == {"result": "success"}
    assert seen_v1[-1]["event"] == "workflow_finished" and seen_v1[-1]["data"]["status"] == "succeeded"
    time.sleep(0)  # the stream above ran to its natural end: the end user's run was not stopped

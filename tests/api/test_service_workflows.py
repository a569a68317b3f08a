"""Service API workflow routes against a real server, in embedded and distributed mode."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.servers import LiveServer
from tests.support.sse import parse_sse

FIXTURES = Path(__file__).parent.parent / "fixtures"


@pytest.fixture(scope="module")
def app_a(live_server: LiveServer) -> dict[str, str]:
    app_id = live_server.import_app(FIXTURES / "app_a.yml")
    return {"app_id": app_id, "key": live_server.create_key(app_id)}


@pytest.fixture
def client(live_server: LiveServer) -> httpx.Client:
    with httpx.Client(base_url=live_server.base_url, timeout=30) as c:
        yield c


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def run(client: httpx.Client, key: str, body: Any, **kw: Any) -> httpx.Response:
    return client.post("/v1/workflows/run", json=body, headers=auth(key), **kw)


def assert_error(resp: httpx.Response, status: int, code: str, message: str | None = None) -> None:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"code", "message", "status"}, body
    assert body["code"] == code and body["status"] == status
    if message is not None:
        assert body["message"] == message


def test_blocking_run(client: httpx.Client, app_a: dict[str, str]) -> None:
    resp = run(client, app_a["key"], {"inputs": {"query": "hi"}, "response_mode": "blocking", "user": "u1"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    uuid.UUID(body["task_id"]), uuid.UUID(body["workflow_run_id"])
    data = body["data"]
    assert data["status"] == "succeeded" and data["outputs"] == {"text": "You said hi"}
    assert data["error"] is None and data["total_steps"] == 3
    assert isinstance(data["created_at"], int) and isinstance(data["finished_at"], int)
    assert resp.headers["x-workflow-run-id"] == body["workflow_run_id"]


def test_response_mode_defaults_to_blocking(client: httpx.Client, app_a: dict[str, str]) -> None:
    resp = run(client, app_a["key"], {"inputs": {"query": "hi", "count": "3"}, "user": "u1"})
    assert resp.status_code == 200 and resp.json()["data"]["outputs"] == {"text": "You said hi x3"}
    detail = client.get(f"/v1/workflows/run/{resp.json()['workflow_run_id']}", headers=auth(app_a["key"]))
    assert json.loads(detail.json()["inputs"])["count"] == 3


def test_streaming_run(client: httpx.Client, app_a: dict[str, str]) -> None:
    body = {"inputs": {"query": "hi"}, "response_mode": "streaming", "user": "u1"}
    with client.stream("POST", "/v1/workflows/run", json=body, headers=auth(app_a["key"])) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        assert resp.headers["cache-control"] == "no-cache"
        raw = b"".join(resp.iter_bytes())
    assert b"\r" not in raw
    frames = parse_sse(raw.decode())
    assert frames[0].event == "ping" and frames[0].retry == 1000
    events = [f for f in frames if f.data is not None]
    names = [f.data["event"] for f in events]
    assert names == [
        "workflow_started",
        "node_started",
        "node_finished",
        "node_started",
        "text_chunk",
        "node_finished",
        "node_started",
        "node_finished",
        "workflow_finished",
    ]
    offsets = [tuple(map(int, f.id.split("-"))) for f in events]
    assert offsets == sorted(offsets) and len(set(offsets)) == len(offsets)
    run_id = events[0].data["workflow_run_id"]
    assert all(f.data["workflow_run_id"] == run_id and "task_id" in f.data for f in events)
    finished = events[-1].data["data"]
    assert finished["status"] == "succeeded" and finished["outputs"] == {"text": "You said hi"}
    assert resp.headers["x-workflow-run-id"] == run_id


def test_run_detail(client: httpx.Client, app_a: dict[str, str], live_server: LiveServer) -> None:
    resp = run(client, app_a["key"], {"inputs": {"query": "hi"}, "user": "u1"})
    run_id = resp.json()["workflow_run_id"]
    detail = client.get(f"/v1/workflows/run/{run_id}", headers=auth(app_a["key"]))
    assert detail.status_code == 200
    body = detail.json()
    assert body["status"] == "succeeded" and body["outputs"] == {"text": "You said hi"}
    inputs = json.loads(body["inputs"])
    assert inputs["query"] == "hi" and inputs["sys.user_id"] == "u1"
    assert isinstance(body["created_at"], int) and isinstance(body["elapsed_time"], float)
    assert_error(
        client.get("/v1/workflows/run/not-a-uuid", headers=auth(app_a["key"])),
        404,
        "not_found",
        "Workflow run not found.",
    )
    other = live_server.create_key(live_server.import_app(FIXTURES / "app_a.yml"))
    assert_error(client.get(f"/v1/workflows/run/{run_id}", headers=auth(other)), 404, "not_found")


BAD_BODIES = [
    ('{"inputs": {"query":', 400, "bad_request", "Invalid JSON payload received or JSON payload is empty."),
    ("", 400, "bad_request", "Invalid JSON payload received or JSON payload is empty."),
    ("[]", 400, "invalid_param", "Request body must be a JSON object."),
    ('{"inputs": {"query": "hi"}}', 400, "invalid_param", "Arg user must be provided."),
    ('{"inputs": {"query": "hi"}, "user": {}}', 400, "invalid_param", "Arg user must be a string."),
    ('{"inputs": {"query": "hi"}, "user": ""}', 400, "invalid_param", "Arg user must be provided."),
    ('{"inputs": {}, "user": "u1"}', 400, "invalid_param", "query is required in input form"),
    (
        '{"inputs": {"query": 5}, "user": "u1"}',
        400,
        "invalid_param",
        "(type 'paragraph') query in input form must be a string",
    ),
    (
        '{"inputs": {"query": "hi", "color": "blue"}, "user": "u1"}',
        400,
        "invalid_param",
        "color in input form must be one of the following: ['red', 'green']",
    ),
    (
        '{"inputs": {"query": "01234567890"}, "user": "u1"}',
        400,
        "invalid_param",
        "query in input form must be less than 10 characters",
    ),
    (
        '{"inputs": {"query": "hi", "count": "abc"}, "user": "u1"}',
        400,
        "invalid_param",
        "count in input form must be a valid number",
    ),
]


@pytest.mark.parametrize(("raw", "status", "code", "message"), BAD_BODIES)
def test_bad_bodies(
    client: httpx.Client, app_a: dict[str, str], raw: str, status: int, code: str, message: str
) -> None:
    resp = client.post(
        "/v1/workflows/run", content=raw, headers={**auth(app_a["key"]), "Content-Type": "application/json"}
    )
    assert_error(resp, status, code, message)


def test_schema_errors_name_the_field(client: httpx.Client, app_a: dict[str, str]) -> None:
    resp = run(client, app_a["key"], {"inputs": "hi", "user": "u1"})
    assert_error(resp, 400, "invalid_param")
    assert resp.json()["message"].startswith("inputs:")
    resp = run(client, app_a["key"], {"inputs": {"query": "hi"}, "response_mode": "fast", "user": "u1"})
    assert resp.json()["message"].startswith("response_mode:")
    assert "detail" not in resp.text
    resp = client.post(
        "/v1/workflows/run", content="{}", headers={**auth(app_a["key"]), "Content-Type": "text/plain"}
    )
    assert_error(resp, 415, "unsupported_media_type")


def test_empty_string_is_a_value(client: httpx.Client, app_a: dict[str, str]) -> None:
    resp = run(client, app_a["key"], {"inputs": {"query": ""}, "user": "u1"})
    assert resp.status_code == 200 and resp.json()["data"]["status"] == "succeeded"


def test_auth_errors(client: httpx.Client, app_a: dict[str, str]) -> None:
    body = {"inputs": {"query": "hi"}, "user": "u1"}
    resp = client.post("/v1/workflows/run", json=body)
    assert_error(resp, 401, "unauthorized", "Authorization header must be provided and start with 'Bearer'")
    assert resp.headers["www-authenticate"] == 'Bearer realm="api"'
    resp = client.post("/v1/workflows/run", json=body, headers={"Authorization": f"Basic {app_a['key']}"})
    assert_error(resp, 401, "unauthorized", "Authorization scheme must be 'Bearer'")
    for key in ("app-wrong", "app-" + "x" * 24, "dfoa_" + "y" * 40):
        assert_error(run(client, key, body), 401, "unauthorized", "Access token is invalid")
    # auth comes before JSON parsing
    resp = client.post("/v1/workflows/run", content="{", headers={"Content-Type": "application/json"})
    assert resp.status_code == 401


def test_mode_mismatch_and_unknown_routes(client: httpx.Client, live_server: LiveServer) -> None:
    chat_key = live_server.create_key(live_server.import_app(FIXTURES / "chat_c.yml"))
    resp = run(client, chat_key, {"inputs": {}, "user": "u1"})
    assert_error(resp, 400, "not_workflow_app", "Please check if your app mode matches the right API route.")
    assert_error(client.get("/v1/nope"), 404, "not_found")
    assert_error(client.delete("/v1/workflows/run"), 405, "method_not_allowed")


def test_info_and_parameters(client: httpx.Client, app_a: dict[str, str]) -> None:
    info = client.get("/v1/info", params={"user": "x"}, headers=auth(app_a["key"]))
    assert info.status_code == 200
    assert info.json() == {
        "name": "App A",
        "description": "The service API fixture app.",
        "tags": [],
        "mode": "workflow",
        "author_name": None,
    }
    params = client.get("/v1/parameters", headers=auth(app_a["key"])).json()
    first = params["user_input_form"][0]["paragraph"]
    assert first["variable"] == "query" and first["required"] is True and first["max_length"] == 10
    assert params["user_input_form"][1]["select"]["options"] == ["red", "green"]
    assert params["system_parameters"]["file_size_limit"] == 15
    for key in (
        "opening_statement",
        "suggested_questions",
        "speech_to_text",
        "text_to_speech",
        "retriever_resource",
        "annotation_reply",
        "more_like_this",
        "sensitive_word_avoidance",
        "file_upload",
        "suggested_questions_after_answer",
    ):
        assert key in params


def test_stop_is_always_success(client: httpx.Client, app_a: dict[str, str]) -> None:
    done = run(client, app_a["key"], {"inputs": {"query": "hi"}, "user": "u1"}).json()
    for task_id in (done["task_id"], done["workflow_run_id"], str(uuid.uuid4()), "nope"):
        resp = client.post(
            f"/v1/workflows/tasks/{task_id}/stop", json={"user": "u1"}, headers=auth(app_a["key"])
        )
        assert resp.status_code == 200 and resp.json() == {"result": "success"}
    detail = client.get(f"/v1/workflows/run/{done['workflow_run_id']}", headers=auth(app_a["key"])).json()
    assert detail["status"] == "succeeded"
    resp = client.post(f"/v1/workflows/tasks/{done['task_id']}/stop", json={}, headers=auth(app_a["key"]))
    assert_error(resp, 400, "invalid_param", "Arg user must be provided.")

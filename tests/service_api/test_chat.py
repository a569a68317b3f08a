"""Advanced-chat apps over ``/v1``: chat messages (blocking and streaming), conversations,
conversation variables across turns, messages, rename, delete, feedback, stop (§5.8, §11 15, 26)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from tests.service_api.conftest import FIXTURES, SHARED_FIXTURES, Keys, app_key, assert_error, auth
from tests.support.servers import LiveServer
from tests.support.sse import parse_sse


@pytest.fixture(scope="module")
def chat_app(svc: LiveServer) -> Keys:
    return app_key(svc, FIXTURES / "chat_vars.yml")


@pytest.fixture(scope="module")
def workflow_app(svc: LiveServer) -> Keys:
    return app_key(svc, SHARED_FIXTURES / "app_a.yml")


@pytest.fixture
def client(svc: LiveServer) -> httpx.Client:
    with httpx.Client(base_url=svc.base_url, timeout=60) as c:
        yield c


def send(client: httpx.Client, key: str, **body: Any) -> httpx.Response:
    return client.post("/v1/chat-messages", json={"inputs": {}, **body}, headers=auth(key))


def test_conversation_continues_with_its_variables_scenario_26(client: httpx.Client, chat_app: Keys) -> None:
    first = send(client, chat_app.key, query="hello there", inputs={"topic": "tea"}, user="u1")
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["event"] == "message" and body["mode"] == "advanced-chat"
    assert body["id"] == body["message_id"] and isinstance(body["created_at"], int)
    assert set(body["metadata"]) == {"usage", "retriever_resources"}
    assert body["answer"] == "topic=tea prev=; n=1 count=1"
    conversation = body["conversation_id"]
    uuid.UUID(conversation), uuid.UUID(body["task_id"])
    # continuing: stored inputs are reused (the new ones are ignored), variables carry over
    again = send(
        client,
        chat_app.key,
        query="second",
        inputs={"topic": "x" * 50},
        user="u1",
        conversation_id=conversation,
    )
    assert again.status_code == 200, again.text
    assert again.json()["answer"] == "topic=tea prev=hello there; n=2 count=2"
    assert again.json()["conversation_id"] == conversation
    unknown = send(client, chat_app.key, query="q", user="u1", conversation_id=str(uuid.uuid4()))
    assert_error(unknown, 404, "not_found", "Conversation Not Exists.")
    other_user = send(client, chat_app.key, query="q", user="u2", conversation_id=conversation)
    assert_error(other_user, 404, "not_found", "Conversation Not Exists.")
    bad = send(client, chat_app.key, query="q", user="u1", conversation_id="abc")
    assert_error(bad, 400, "invalid_param", "conversation_id must be a valid UUID")
    missing_input = send(client, chat_app.key, query="q", user="u1")
    assert_error(missing_input, 400, "invalid_param", "topic is required in input form")
    assert_error(send(client, chat_app.key, inputs={"topic": "t"}, user="u1"), 400, "invalid_param")
    assert_error(send(client, chat_app.key, query="q", inputs={"topic": "t"}), 400, "invalid_param")


def test_mode_mismatch_scenario_15(client: httpx.Client, chat_app: Keys, workflow_app: Keys) -> None:
    resp = send(client, workflow_app.key, query="hi", user="u1")
    assert_error(resp, 400, "not_chat_app", "Please check if your app mode matches the right API route.")
    resp = client.post("/v1/workflows/run", json={"inputs": {}, "user": "u1"}, headers=auth(chat_app.key))
    assert_error(resp, 400, "not_workflow_app")
    resp = client.get("/v1/conversations", params={"user": "u1"}, headers=auth(workflow_app.key))
    assert_error(resp, 400, "not_chat_app")


def test_streaming_chat_events(client: httpx.Client, chat_app: Keys) -> None:
    body = {"query": "stream me", "inputs": {"topic": "t"}, "user": "s1", "response_mode": "streaming"}
    with client.stream("POST", "/v1/chat-messages", json=body, headers=auth(chat_app.key)) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        raw = b"".join(resp.iter_bytes()).decode()
    events = [f.data for f in parse_sse(raw) if f.data is not None]
    names = [e["event"] for e in events]
    assert names[0] == "workflow_started" and names[-2:] == ["workflow_finished", "message_end"]
    assert "text_chunk" not in names
    answer = "".join(e["answer"] for e in events if e["event"] == "message")
    assert answer == "topic=t prev=; n=1 count=1"
    first_message = names.index("message")
    assert first_message < names.index("workflow_finished")
    conversation, message = events[0]["conversation_id"], events[0]["message_id"]
    for event in events:
        assert (event["conversation_id"], event["message_id"]) == (conversation, message)
        assert isinstance(event["created_at"], int) and "task_id" in event
    end = events[-1]
    assert end["id"] == message and set(end["metadata"]["usage"]) >= {"total_tokens", "latency"}
    assert events[-2]["data"]["status"] == "succeeded"
    history = client.get(
        "/v1/messages", params={"user": "s1", "conversation_id": conversation}, headers=auth(chat_app.key)
    ).json()
    assert [m["answer"] for m in history["data"]] == [answer]


def test_conversation_routes(client: httpx.Client, chat_app: Keys) -> None:
    key, user = chat_app.key, "lister"
    conversations = []
    for n in range(3):
        resp = send(
            client, key, query=f"question number {n} " + "z" * 40, inputs={"topic": str(n)}, user=user
        )
        conversations.append(resp.json()["conversation_id"])
    third = conversations[-1]
    send(client, key, query="follow-up", user=user, conversation_id=conversations[0])
    listed = client.get("/v1/conversations", params={"user": user, "limit": 2}, headers=auth(key)).json()
    assert listed["limit"] == 2 and listed["has_more"] is True
    assert [c["id"] for c in listed["data"]] == [conversations[0], third]  # newest update first
    item = listed["data"][1]
    assert set(item) == {"id", "name", "inputs", "status", "introduction", "created_at", "updated_at"}
    assert item["name"] == ("question number 2 " + "z" * 40)[:30] and item["inputs"] == {"topic": "2"}
    rest = client.get(
        "/v1/conversations", params={"user": user, "last_id": third, "limit": 2}, headers=auth(key)
    ).json()
    assert [c["id"] for c in rest["data"]] == [conversations[1]] and rest["has_more"] is False
    nobody = client.get("/v1/conversations", params={"user": "nobody"}, headers=auth(key)).json()
    assert nobody == {"limit": 20, "has_more": False, "data": []}
    assert_error(
        client.get("/v1/conversations", headers=auth(key)), 400, "invalid_param", "Arg user must be provided."
    )

    # messages: oldest first within a page, paged backwards with first_id
    messages = client.get(
        "/v1/messages",
        params={"user": user, "conversation_id": conversations[0], "limit": 1},
        headers=auth(key),
    ).json()
    assert messages["has_more"] is True and messages["data"][0]["query"] == "follow-up"
    older = client.get(
        "/v1/messages",
        params={"user": user, "conversation_id": conversations[0], "first_id": messages["data"][0]["id"]},
        headers=auth(key),
    ).json()
    assert [m["query"][:17] for m in older["data"]] == ["question number 0"] and older["has_more"] is False
    assert older["data"][0]["feedback"] is None and older["data"][0]["status"] == "normal"

    # feedback
    message_id = messages["data"][0]["id"]
    resp = client.post(
        f"/v1/messages/{message_id}/feedbacks", json={"rating": "like", "user": user}, headers=auth(key)
    )
    assert resp.status_code == 200 and resp.json() == {"result": "success"}
    again = client.get(
        "/v1/messages",
        params={"user": user, "conversation_id": conversations[0], "limit": 1},
        headers=auth(key),
    ).json()
    assert again["data"][0]["feedback"] == {"rating": "like"}
    resp = client.post(
        f"/v1/messages/{message_id}/feedbacks", json={"rating": "meh", "user": user}, headers=auth(key)
    )
    assert_error(resp, 400, "invalid_param")
    resp = client.post(
        f"/v1/messages/{message_id}/feedbacks", json={"rating": "like", "user": "x"}, headers=auth(key)
    )
    assert_error(resp, 404, "not_found", "Message Not Exists.")

    # conversation variables after the write-back
    variables = client.get(
        f"/v1/conversations/{conversations[0]}/variables", params={"user": user}, headers=auth(key)
    ).json()
    values = {v["name"]: (v["value_type"], v["value"]) for v in variables["data"]}
    assert values == {"turns": ("number", 2), "last": ("string", "follow-up")}

    # rename, auto-generate, delete
    resp = client.post(
        f"/v1/conversations/{third}/name", json={"name": "Renamed", "user": user}, headers=auth(key)
    )
    assert resp.status_code == 200 and resp.json()["name"] == "Renamed" and resp.json()["id"] == third
    resp = client.post(
        f"/v1/conversations/{third}/name", json={"auto_generate": True, "user": user}, headers=auth(key)
    )
    assert resp.json()["name"] == ("question number 2 " + "z" * 40)[:30]
    resp = client.request("DELETE", f"/v1/conversations/{third}", json={"user": user}, headers=auth(key))
    assert resp.status_code == 204
    assert_error(
        send(client, key, query="q", user=user, conversation_id=third),
        404,
        "not_found",
        "Conversation Not Exists.",
    )
    resp = client.request("DELETE", f"/v1/conversations/{third}", json={"user": user}, headers=auth(key))
    assert_error(resp, 404, "not_found", "Conversation Not Exists.")


def test_chat_stop_is_always_success(client: httpx.Client, chat_app: Keys) -> None:
    done = send(client, chat_app.key, query="q", inputs={"topic": "t"}, user="u1").json()
    for task_id in (done["task_id"], str(uuid.uuid4())):
        resp = client.post(
            f"/v1/chat-messages/{task_id}/stop", json={"user": "u1"}, headers=auth(chat_app.key)
        )
        assert resp.status_code == 200 and resp.json() == {"result": "success"}
    resp = client.post(f"/v1/chat-messages/{done['task_id']}/stop", json={}, headers=auth(chat_app.key))
    assert_error(resp, 400, "invalid_param", "Arg user must be provided.")

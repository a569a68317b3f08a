"""An advanced-chat app holds a three-turn conversation through ``/v1/chat-messages`` with memory:
each turn's model request carries the earlier turns."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.fake_openai import FakeOpenAI, Reply
from tests.support.servers import LiveServer

FIXTURES = Path(__file__).parent.parent / "fixtures"


@pytest.fixture(scope="module")
def fake_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def test_three_turns_with_memory(live_server: LiveServer, fake_openai: FakeOpenAI) -> None:
    live_server.cli(
        "providers", "add", "openai", "--base-url", fake_openai.base_url, "--api-key", fake_openai.api_key
    )
    key = live_server.create_key(live_server.import_app(FIXTURES / "chat_memory.yml"))
    fake_openai.script(
        Reply(chunks=["Hi Ada!"]), Reply(chunks=["You are Ada."]), Reply(chunks=["Paris, you said."])
    )
    first_request = len(fake_openai.requests)
    conversation_id = ""
    answers = []
    with httpx.Client(
        base_url=live_server.base_url, timeout=60, headers={"Authorization": f"Bearer {key}"}
    ) as c:
        for query in ("I am Ada and I live in Paris.", "Who am I?", "Where do I live?"):
            body = {
                "query": query,
                "inputs": {},
                "user": "u1",
                "response_mode": "blocking",
                "conversation_id": conversation_id,
            }
            resp = c.post("/v1/chat-messages", json=body)
            assert resp.status_code == 200, resp.text
            conversation_id = resp.json()["conversation_id"]
            answers.append(resp.json()["answer"])
    assert answers == ["Hi Ada!", "You are Ada.", "Paris, you said."]
    sent = [r["messages"] for r in fake_openai.requests[first_request:]]
    assert sent[0] == [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "I am Ada and I live in Paris."},
    ]
    assert sent[2] == [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "I am Ada and I live in Paris."},
        {"role": "assistant", "content": "Hi Ada!"},
        {"role": "user", "content": "Who am I?"},
        {"role": "assistant", "content": "You are Ada."},
        {"role": "user", "content": "Where do I live?"},
    ]

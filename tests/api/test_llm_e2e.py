"""A real Dify-shaped DSL with llm, question-classifier and parameter-extractor nodes, run over
``/v1/workflows/run`` (streaming) against a local OpenAI-compatible server, in both modes."""

from __future__ import annotations

import json
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


def test_llm_pipeline_streams_text_chunks_before_the_node_finishes(
    live_server: LiveServer, fake_openai: FakeOpenAI
) -> None:
    live_server.cli(
        "providers", "add", "openai", "--base-url", fake_openai.base_url, "--api-key", fake_openai.api_key
    )
    key = live_server.create_key(live_server.import_app(FIXTURES / "llm_pipeline.yml"))
    fake_openai.script(
        Reply(chunks=["I want ", "three days ", "in Paris."], delay_s=0.05, usage=(20, 6)),
        Reply(chunks=['{"category_id": "travel", "category_name": "travel"}'], usage=(30, 8)),
        Reply(
            chunks=[],
            tool_call={"name": "extract_parameters", "arguments": {"city": "Paris", "days": 3}},
            usage=(25, 7),
        ),
    )
    body = {"inputs": {"request": "paris 3 days pls"}, "response_mode": "streaming", "user": "u1"}
    events: list[dict] = []
    with (
        httpx.Client(base_url=live_server.base_url, timeout=60) as client,
        client.stream(
            "POST", "/v1/workflows/run", json=body, headers={"Authorization": f"Bearer {key}"}
        ) as resp,
    ):
        assert resp.status_code == 200
        for line in resp.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    names = [(e["event"], e["data"].get("node_id")) for e in events]
    llm_done = names.index(("node_finished", "llm"))
    chunks = [i for i, e in enumerate(events) if e["event"] == "text_chunk"]
    assert [events[i]["data"]["text"] for i in chunks if events[i]["data"]["text"]][:3] == [
        "I want ",
        "three days ",
        "in Paris.",
    ]
    assert chunks[0] < llm_done
    finished = events[-1]["data"]
    assert events[-1]["event"] == "workflow_finished" and finished["status"] == "succeeded", finished
    assert finished["outputs"] == {"sentence": "I want three days in Paris.", "city": "Paris", "days": 3}
    assert finished["total_tokens"] == 26 + 38 + 32
    assert ("node_started", "other_end") not in names
    llm_finished = events[llm_done]["data"]
    assert llm_finished["execution_metadata"]["total_tokens"] == 26
    assert fake_openai.requests[-3]["messages"][-1] == {"role": "user", "content": "paris 3 days pls"}
    assert fake_openai.requests[-1]["tool_choice"]["function"]["name"] == "extract_parameters"


def test_unknown_provider_fails_the_node_with_a_clear_error(live_server: LiveServer) -> None:
    text = (
        (FIXTURES / "llm_pipeline.yml")
        .read_text()
        .replace("langgenius/openai/openai", "acme/nowhere/nowhere")
    )
    path = Path(live_server.log_dir) / "unknown_provider.yml"
    path.write_text(text)
    key = live_server.create_key(live_server.import_app(path))
    with httpx.Client(base_url=live_server.base_url, timeout=60) as client:
        resp = client.post(
            "/v1/workflows/run",
            json={"inputs": {"request": "x"}, "user": "u1"},
            headers={"Authorization": f"Bearer {key}"},
        )
    data = resp.json()["data"]
    assert data["status"] == "failed"
    assert data["error"] == "Model provider 'nowhere' is not configured"

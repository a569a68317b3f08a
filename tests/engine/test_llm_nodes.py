"""llm, question-classifier and parameter-extractor against a call-recording fake provider."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from sluice.engine.llm import ChatDelta, ChatRequest, ModelInvokeError, Usage
from sluice.engine.nodes.llm_prompt import ThinkSplitter
from sluice.engine.testkit import make_ports
from tests.engine.builder import brief, chain, document, edge, end, node, run, start

MODEL = {
    "provider": "langgenius/openai/openai",
    "name": "gpt-test",
    "mode": "chat",
    "completion_params": {"temperature": 0.1},
}


class FakeModels:
    def __init__(self, *answers: list[ChatDelta] | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[ChatRequest] = []

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatDelta]:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        for delta in answer:
            yield delta


def text(*pieces: str, usage: tuple[int, int] = (10, 5), tool: str | None = None) -> list[ChatDelta]:
    deltas = [ChatDelta(text=p) for p in pieces]
    if tool is not None:
        deltas.append(ChatDelta(tool_calls=({"index": 0, "function": {"name": "x", "arguments": tool}},)))
    return [*deltas, ChatDelta(usage=Usage(usage[0], usage[1], sum(usage)), finish_reason="stop")]


def llm(node_id: str = "llm", **extra: Any) -> dict[str, Any]:
    prompt = [{"role": "system", "text": "Be brief."}, {"role": "user", "text": "Say hi to {{#start.name#}}"}]
    return node(node_id, "llm", model=MODEL, prompt_template=prompt, **extra)


async def test_llm_streams_chunks_before_it_finishes_and_counts_tokens() -> None:
    models = FakeModels(text("Hel", "lo ", "Ada", usage=(12, 3)))
    dsl = document(
        [start("start", "name"), llm(), end("end", out=["llm", "text"])], chain("start", "llm", "end")
    )
    events = await run(dsl, make_ports(models=models), {"name": "Ada"})
    order = brief(events)
    finished = order.index("node_succeeded:llm")
    chunks = [i for i, e in enumerate(order) if e.startswith("text_chunk")]
    assert [order[i] for i in chunks] == [
        "text_chunk:'Hel'",
        "text_chunk:'lo '",
        "text_chunk:'Ada'",
        "text_chunk:''",
    ]
    assert next(e for e in events if e.kind == "text_chunk" and e.data["text"] == "").data["is_final"]
    assert all(i < finished for i in chunks)
    result = next(e for e in events if e.kind == "node_succeeded").data  # start's
    terminal = events[-1]
    assert terminal.kind == "run_succeeded" and terminal.data["outputs"] == {"out": "Hello Ada"}
    assert terminal.data["total_tokens"] == 15
    llm_result = next(
        e.data["result"] for e in events if e.kind == "node_succeeded" and e.node.node_id == "llm"
    )
    assert llm_result["outputs"]["usage"]["total_tokens"] == 15
    assert llm_result["metadata"]["total_tokens"] == 15
    assert llm_result["process_data"]["model_provider"] == "openai"
    sent = models.requests[0]
    assert sent.provider == "openai" and sent.model == "gpt-test" and sent.params == {"temperature": 0.1}
    assert [(m.role, m.content) for m in sent.messages] == [
        ("system", "Be brief."),
        ("user", "Say hi to Ada"),
    ]
    assert result["result"]["status"] == "succeeded"


async def test_llm_provider_error_fails_the_node_clearly() -> None:
    models = FakeModels(ModelInvokeError("[openai] Error 500: boom"))
    dsl = document(
        [start("start", "name"), llm(), end("end", out=["llm", "text"])], chain("start", "llm", "end")
    )
    events = await run(dsl, make_ports(models=models), {"name": "Ada"})
    failed = next(e for e in events if e.kind == "node_failed")
    assert failed.data["error"] == "[openai] Error 500: boom"
    assert failed.data["result"]["error_type"] == "ModelInvokeError"
    assert events[-1].kind == "run_failed"


async def test_llm_without_provider_port_names_the_capability() -> None:
    dsl = document(
        [start("start", "name"), llm(), end("end", out=["llm", "text"])], chain("start", "llm", "end")
    )
    events = await run(dsl, make_ports(), {"name": "Ada"})
    failed = next(e for e in events if e.kind == "node_failed")
    assert failed.data["result"]["error_type"] == "ServiceNotConfiguredError"


async def test_separated_reasoning_goes_to_reasoning_content() -> None:
    models = FakeModels(text("<thi", "nk>pondering</th", "ink>Answer"))
    dsl = document(
        [start("start", "name"), llm(reasoning_format="separated"), end("end", out=["llm", "text"])],
        chain("start", "llm", "end"),
    )
    events = await run(dsl, make_ports(models=models), {"name": "Ada"})
    result = next(e.data["result"] for e in events if e.kind == "node_succeeded" and e.node.node_id == "llm")
    assert result["outputs"]["text"] == "Answer" and result["outputs"]["reasoning_content"] == "pondering"


def test_think_splitter_handles_split_tags() -> None:
    splitter = ThinkSplitter()
    pieces = [
        *splitter.feed("a<th"),
        *splitter.feed("ink>b</"),
        *splitter.feed("think>c<"),
        *splitter.flush(),
    ]
    merged: dict[str, str] = {}
    for kind, piece in pieces:
        merged[kind] = merged.get(kind, "") + piece
    assert merged == {"text": "ac<", "reasoning": "b"}


async def test_question_classifier_routes_by_class_id() -> None:
    classes = [{"id": "c1", "name": "billing"}, {"id": "c2", "name": "tech"}]
    qc = node(
        "qc", "question-classifier", model=MODEL, classes=classes, query_variable_selector=["start", "name"]
    )
    nodes = [start("start", "name"), qc, end("e1", r=["qc", "class_name"]), end("e2", r=["qc", "class_name"])]
    edges = [edge("start", "qc"), edge("qc", "e1", "c1"), edge("qc", "e2", "c2")]
    models = FakeModels(text('{"category_id": "c2", "category_name": "tech"}'))
    events = await run(document(nodes, edges), make_ports(models=models), {"name": "my laptop is broken"})
    order = brief(events)
    assert "node_started:e2" in order and "node_started:e1" not in order
    result = next(e.data["result"] for e in events if e.kind == "node_succeeded" and e.node.node_id == "qc")
    assert result["outputs"]["class_label"] == "CLASS 2" and result["edge_source_handle"] == "c2"
    unparsable = FakeModels(text("no idea"))
    events = await run(document(nodes, edges), make_ports(models=unparsable), {"name": "?"})
    assert "node_started:e1" in brief(events)


async def test_parameter_extractor_function_call_and_missing_required() -> None:
    params = [
        {"name": "city", "type": "string", "description": "a city", "required": True},
        {"name": "days", "type": "number", "description": "days", "required": False},
    ]
    pe = node(
        "pe",
        "parameter-extractor",
        model=MODEL,
        parameters=params,
        query=["start", "name"],
        reasoning_mode="function_call",
    )
    nodes = [
        start("start", "name"),
        pe,
        end("end", city=["pe", "city"], days=["pe", "days"], ok=["pe", "__is_success"]),
    ]
    models = FakeModels(text(tool='{"city": "Paris", "days": "3"}'), text(tool='{"days": 2}'))
    events = await run(
        document(nodes, chain("start", "pe", "end")), make_ports(models=models), {"name": "3 days in Paris"}
    )
    assert events[-1].data["outputs"] == {"city": "Paris", "days": 3, "ok": 1}
    assert (
        models.requests[0].tools
        and models.requests[0].tool_choice["function"]["name"] == "extract_parameters"
    )
    events = await run(
        document(nodes, chain("start", "pe", "end")), make_ports(models=models), {"name": "2 days"}
    )
    outputs = events[-1].data["outputs"]
    assert outputs["ok"] == 0 and outputs["city"] == ""


async def test_parameter_extractor_model_failure_outputs() -> None:
    params = [{"name": "city", "type": "string", "required": True}]
    pe = node(
        "pe",
        "parameter-extractor",
        model=MODEL,
        parameters=params,
        query=["start", "name"],
        reasoning_mode="prompt",
        error_strategy="default-value",
        default_value=[],
    )
    nodes = [start("start", "name"), pe, end("end", ok=["pe", "__is_success"])]
    models = FakeModels(ModelInvokeError("down"))
    events = await run(document(nodes, chain("start", "pe", "end")), make_ports(models=models), {"name": "x"})
    exception = next(e for e in events if e.kind == "node_exception")
    assert exception.data["result"]["error"] == "down"

"""The SSE view of container and human-input events (engine.md §6.4) through the runtime's mapper."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sluice.engine.testkit import collect
from sluice.runtime.dify_events import DifyMapper, RunFacts
from tests.engine.golden_cases import load_case


async def sse(name: str) -> list[tuple[str, dict[str, Any]]]:
    case = load_case(name)
    events = await collect(case.engine(case.ports()).run(case.run_input()))
    mapper = DifyMapper(RunFacts("run-1", "task-1", "wf-1", datetime(2025, 1, 1, tzinfo=UTC), {"id": "u"}))
    out = []
    for event in events:
        mapped = mapper.map(event)
        if mapped is not None:
            out.append((mapped.event, mapped.payload["data"]))
    return out


async def test_iteration_nodes_show_as_iteration_events_only() -> None:
    stream = await sse("iteration")
    names = [n for n, _ in stream]
    assert names.count("iteration_started") == 1 and names.count("iteration_next") == 3
    assert names.count("iteration_completed") == 1
    assert not [d for n, d in stream if n.startswith("node_") and d["node_id"] == "it"]
    inner = [d for n, d in stream if n == "node_started" and d["node_id"] == "inner"]
    assert [d["iteration_id"] for d in inner] == ["it"] * 3
    completed = next(d for n, d in stream if n == "iteration_completed")
    assert completed["status"] == "succeeded" and completed["steps"] == 3 and completed["id"] == "it"
    assert completed["outputs"] == {"output": ["0:A", "1:B", "2:C"]}
    assert [d["index"] for n, d in stream if n == "node_started"] == [1, 2, 4, 5, 6, 7]


async def test_loop_events_and_failures_carry_their_fields() -> None:
    stream = await sse("loop_break")
    nexts = [d for n, d in stream if n == "loop_next"]
    assert [d["index"] for d in nexts] == [1, 2] and all(d["pre_loop_output"] == {} for d in nexts)
    inc = [d for n, d in stream if n == "node_finished" and d["node_id"] == "inc"]
    assert [d["loop_id"] for d in inc] == ["loop"] * 3
    assert inc[0]["execution_metadata"] == {"loop_id": "loop", "loop_index": 0}
    errors = await sse("iteration_errors")
    completed = next(d for n, d in errors if n == "iteration_completed")
    assert completed["status"] == "succeeded"
    assert [d["status"] for n, d in errors if n == "node_finished" and d["node_id"] == "inner"] == [
        "succeeded",
        "failed",
        "succeeded",
    ]


async def test_human_input_events() -> None:
    stream = await sse("human_input_approve")
    filled = next(d for n, d in stream if n == "human_input_form_filled")
    assert filled == {
        "node_id": "hi",
        "node_title": "hi",
        "rendered_content": "Approve Ada? fine",
        "action_id": "approve",
        "action_text": "Approve",
        "submitted_data": {"comment": "fine"},
    }
    timeout = next(d for n, d in await sse("human_input_timeout") if n == "human_input_form_timeout")
    assert timeout == {"node_id": "hi", "node_title": "hi", "expiration_time": 1767312000}

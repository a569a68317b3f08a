"""Response streaming of streamed outputs (§5.6): a node's ``ctx.stream`` deltas are re-emitted in
template order, reasoning chunks pass when a reached template reads the node, and streams never
interleave. The model node here is a test stand-in for a streaming node (LLM, tool)."""

from __future__ import annotations

import dataclasses
from typing import Any

from sluice.engine import events as ev
from sluice.engine.graph import CompiledGraph
from sluice.engine.nodes.base import Node, NodeResult, RunContext
from sluice.engine.pool import VariablePool
from sluice.engine.testkit import VirtualClock, make_ports
from tests.engine.builder import answer, brief, chain, compile_graph, document, edge, node, of, run, start


class FakeModel(Node):
    """Streams ``Hel``, ``lo`` then an empty final chunk over 0.2 virtual seconds."""

    inline = False
    streams = True

    def prepare(self, pool: VariablePool, ctx: RunContext) -> Any:
        return None

    async def run(self, prepared: Any, ctx: RunContext) -> NodeResult:
        selector = [self.spec.id, "text"]
        ctx.reasoning([self.spec.id, "reasoning_content"], "thinking")
        ctx.stream(selector, "Hel")
        await ctx.ports.clock.sleep(0.1)
        ctx.stream(selector, "lo")
        await ctx.ports.clock.sleep(0.1)
        ctx.stream(selector, "", True)
        return NodeResult(outputs={"text": "Hello", "reasoning_content": "thinking"})


def with_models(graph: CompiledGraph, *ids: str) -> CompiledGraph:
    runners = dict(graph.runners)
    for node_id in ids:
        runners[node_id] = FakeModel(graph.nodes[node_id])
    return dataclasses.replace(graph, runners=runners)


async def test_stream_chunks_are_re_emitted_in_template_order() -> None:
    nodes = [start("start"), node("llm", "llm"), answer("ans", "A: {{#llm.text#}}!")]
    graph = with_models(
        compile_graph(document(nodes, chain("start", "llm", "ans"), mode="advanced-chat")), "llm"
    )
    events = await run(graph, make_ports(VirtualClock()))
    raw = [(e.data["chunk"], e.data["is_final"]) for e in of(events, ev.NODE_STREAM_CHUNK)]
    assert raw == [("Hel", False), ("lo", False), ("", True)]
    text = [
        (c.data["text"], c.data["is_final"], c.data["attributed_node_id"]) for c in of(events, ev.TEXT_CHUNK)
    ]
    assert text == [
        ("A: ", False, "ans"),
        ("Hel", False, "llm"),
        ("lo", False, "llm"),
        ("", True, "llm"),
        ("!", True, "ans"),
    ]
    names = brief(events)
    assert (
        names.index("text_chunk:'Hel'") < names.index("text_chunk:'lo'") < names.index("node_succeeded:llm")
    )
    reasoning = of(events, ev.REASONING_CHUNK)
    assert [(r.data["text"], r.data["selector"]) for r in reasoning] == [
        ("thinking", ["llm", "reasoning_content"])
    ]
    assert of(events, ev.NODE_REASONING_CHUNK)
    assert events[-1].data["outputs"]["answer"] == "A: Hello!"


async def test_two_streams_do_not_interleave() -> None:
    nodes = [
        start("start"),
        node("m1", "llm"),
        node("m2", "llm"),
        answer("a1", "{{#m1.text#}}"),
        answer("a2", "{{#m2.text#}}"),
    ]
    edges = [edge("start", "m1"), edge("start", "m2"), edge("m1", "a1"), edge("m2", "a2")]
    graph = with_models(compile_graph(document(nodes, edges, mode="advanced-chat")), "m1", "m2")
    events = await run(graph, make_ports(VirtualClock()))
    text = [(c.data["selector"][0], c.data["text"]) for c in of(events, ev.TEXT_CHUNK)]
    assert text == [("m1", "Hel"), ("m1", "lo"), ("m1", ""), ("m2", "Hel"), ("m2", "lo"), ("m2", "")]
    assert events[-1].data["outputs"]["answer"] == "HelloHello"


async def test_reasoning_is_dropped_when_no_template_reads_the_node() -> None:
    nodes = [start("start"), node("llm", "llm"), answer("ans", "fixed")]
    graph = with_models(
        compile_graph(document(nodes, chain("start", "llm", "ans"), mode="advanced-chat")), "llm"
    )
    events = await run(graph, make_ports(VirtualClock()))
    assert of(events, ev.NODE_REASONING_CHUNK) and not of(events, ev.REASONING_CHUNK)
    assert [c.data["text"] for c in of(events, ev.TEXT_CHUNK)] == ["fixed"]


async def test_stream_chunks_survive_a_pause_and_replay() -> None:
    from sluice.engine import Engine, RunInput
    from sluice.engine.testkit import at_time, collect

    nodes = [start("start"), node("llm", "llm"), answer("ans", "A: {{#llm.text#}}!")]
    graph = with_models(
        compile_graph(document(nodes, chain("start", "llm", "ans"), mode="advanced-chat")), "llm"
    )
    clock = VirtualClock()
    engine = Engine(graph, make_ports(clock))
    pauser = at_time(clock, 0.05, lambda: engine.pause("p"))
    first = await collect(engine.run(RunInput(run_id="r", inputs={})))
    await pauser
    assert first[-1].kind == ev.RUN_PAUSED
    rest = await collect(engine.resume(RunInput(run_id="r", inputs={}), [e.to_dict() for e in first]))
    text = [c.data["text"] for c in of(first + rest, ev.TEXT_CHUNK)]
    assert text == ["A: ", "Hel", "lo", "", "!"]
    assert rest[-1].data["outputs"]["answer"] == "A: Hello!"

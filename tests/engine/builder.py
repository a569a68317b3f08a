"""Small builders for DSL documents and runs in engine tests."""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from typing import Any

from sluice.engine import CompiledGraph, Engine, EngineSettings, Event, RunInput, load_dsl
from sluice.engine.ports import Ports
from sluice.engine.testkit import collect


def node(node_id: str, type_: str, title: str | None = None, **data: Any) -> dict[str, Any]:
    return {"id": node_id, "data": {"type": type_, "title": title or node_id, **data}}


def start(node_id: str = "start", *names: str, **typed: str) -> dict[str, Any]:
    variables = [{"variable": n, "label": n, "type": "text-input", "required": False} for n in names]
    variables += [{"variable": n, "label": n, "type": t, "required": False} for n, t in typed.items()]
    return node(node_id, "start", "Start", variables=variables)


def code(
    node_id: str,
    program: str,
    variables: Mapping[str, Sequence[str]],
    outputs: Mapping[str, str],
    **extra: Any,
) -> dict[str, Any]:
    return node(
        node_id,
        "code",
        code_language="python3",
        code=program,
        variables=[{"variable": k, "value_selector": list(v)} for k, v in variables.items()],
        outputs={k: {"type": t, "children": None} for k, t in outputs.items()},
        **extra,
    )


def template(node_id: str, text: str, variables: Mapping[str, Sequence[str]], **extra: Any) -> dict[str, Any]:
    return node(
        node_id,
        "template-transform",
        template=text,
        variables=[{"variable": k, "value_selector": list(v)} for k, v in variables.items()],
        **extra,
    )


def end(node_id: str, **outputs: Sequence[str]) -> dict[str, Any]:
    return node(
        node_id, "end", outputs=[{"variable": k, "value_selector": list(v)} for k, v in outputs.items()]
    )


def answer(node_id: str, text: str) -> dict[str, Any]:
    return node(node_id, "answer", answer=text)


def cond(selector: Sequence[str], operator: str, value: Any = None) -> dict[str, Any]:
    return {"variable_selector": list(selector), "comparison_operator": operator, "value": value}


def ifelse(
    node_id: str, *cases: tuple[str, Sequence[dict[str, Any]]], operator: str = "and"
) -> dict[str, Any]:
    return node(
        node_id,
        "if-else",
        cases=[{"case_id": cid, "logical_operator": operator, "conditions": list(cs)} for cid, cs in cases],
    )


def edge(source: str, target: str, handle: str = "source", edge_id: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"source": source, "target": target, "sourceHandle": handle}
    if edge_id:
        out["id"] = edge_id
    return out


def chain(*ids: str) -> list[dict[str, Any]]:
    return [edge(a, b) for a, b in itertools.pairwise(ids)]


def document(
    nodes: Sequence[Mapping[str, Any]],
    edges: Sequence[Mapping[str, Any]],
    *,
    mode: str = "workflow",
    version: str = "0.6.0",
    env: Sequence[Mapping[str, Any]] = (),
    conversation: Sequence[Mapping[str, Any]] = (),
) -> str:
    doc = {
        "version": version,
        "kind": "app",
        "app": {"name": "test", "mode": mode},
        "workflow": {
            "graph": {"nodes": list(nodes), "edges": list(edges)},
            "environment_variables": list(env),
            "conversation_variables": list(conversation),
        },
    }
    return json.dumps(doc, ensure_ascii=False)


def compile_graph(text: str) -> CompiledGraph:
    result = load_dsl(text)
    assert result.graph is not None, [f.to_dict() for f in result.errors]
    return result.graph


async def run(
    graph: CompiledGraph | str,
    ports: Ports,
    inputs: Mapping[str, Any] | None = None,
    settings: EngineSettings | None = None,
    **run_input: Any,
) -> list[Event]:
    if isinstance(graph, str):
        graph = compile_graph(graph)
    engine = Engine(graph, ports, settings)
    return await collect(engine.run(RunInput(run_id="run-1", inputs=dict(inputs or {}), **run_input)))


def brief(events: Sequence[Event]) -> list[str]:
    """``kind`` or ``kind:node_id`` or ``kind:edge_id`` per event, for order assertions."""
    out = []
    for e in events:
        if e.node is not None:
            out.append(f"{e.kind}:{e.node.node_id}")
        elif "edge_id" in e.data:
            out.append(f"{e.kind}:{e.data['edge_id']}")
        elif e.kind in ("text_chunk", "reasoning_chunk"):
            out.append(f"{e.kind}:{e.data['text']!r}")
        else:
            out.append(e.kind)
    return out


def terminal(events: Sequence[Event]) -> Event:
    return events[-1]


def of(events: Sequence[Event], kind: str, node_id: str | None = None) -> list[Event]:
    return [
        e for e in events if e.kind == kind and (node_id is None or (e.node and e.node.node_id == node_id))
    ]

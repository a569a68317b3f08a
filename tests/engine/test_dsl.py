"""DSL import (engine.md §1.3, §2): scenario 41 and the rest of the import contract."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sluice.engine import events as ev
from sluice.engine import load_dsl
from sluice.engine.testkit import make_ports
from tests.engine.builder import chain, code, edge, end, node, of, run, start


def base(**extra: Any) -> dict[str, Any]:
    doc = {
        "version": "0.6.0",
        "kind": "app",
        "app": {"name": "x", "mode": "workflow"},
        "workflow": {
            "graph": {
                "nodes": [start("start"), end("end", a=["start", "a"])],
                "edges": [edge("start", "end", edge_id="e1")],
            }
        },
    }
    doc.update(extra)
    return doc


def codes(doc: dict[str, Any] | str, **kwargs: Any) -> list[str]:
    text = doc if isinstance(doc, str) else json.dumps(doc)
    return [f.code for f in load_dsl(text, **kwargs).findings]


def with_nodes(nodes: list[Any], edges: list[Any]) -> dict[str, Any]:
    doc = base()
    doc["workflow"]["graph"] = {"nodes": nodes, "edges": edges}
    return doc


def iteration_nodes() -> list[dict[str, Any]]:
    return [
        start("start"),
        node(
            "it",
            "iteration",
            start_node_id="it_start",
            iterator_selector=["start", "a"],
            output_selector=["in", "output"],
        ),
        {"id": "it_start", "parentId": "it", "data": {"type": "iteration-start", "title": ""}},
        {
            "id": "in",
            "parentId": "it",
            "data": {"type": "template-transform", "title": "", "template": "x", "variables": []},
        },
        end("end", r=["it", "output"]),
    ]


BAD = {
    "graph.cycle": with_nodes(
        [start("start"), end("a"), end("b")], [*chain("start", "a", "b"), edge("b", "a")]
    ),
    "graph.no_start": with_nodes([end("end")], []),
    "graph.multiple_start": with_nodes([start("s1"), start("s2"), end("end")], chain("s1", "end")),
    "edge.dangling": with_nodes([start("start"), end("end")], [edge("start", "ghost")]),
    "node.type_unknown": with_nodes([start("start"), node("m", "magic")], []),
    "node.type_unsupported": with_nodes([start("start"), node("k", "knowledge-retrieval")], []),
    "selector.invalid": with_nodes([start("start"), end("end", a=["x"])], chain("start", "end")),
    "dsl.version_invalid": base(version=0.6),
    "dsl.version_unsupported": base(version="9.0.0"),
    "app.mode_unsupported": base(app={"name": "x", "mode": "chat"}),
    "edge.crosses_scope": with_nodes(
        iteration_nodes(), [edge("start", "it"), edge("it_start", "in"), edge("in", "end")]
    ),
    "node.data_invalid": with_nodes(
        [
            start("start"),
            {**code("c", "x", {}, {}), "data": {**code("c", "x", {}, {})["data"], "code_language": "jinja2"}},
        ],
        chain("start", "c"),
    ),
}


@pytest.mark.parametrize("code_", sorted(BAD))
def test_41_bad_dsl_is_refused_with_one_code(code_: str) -> None:
    result = load_dsl(json.dumps(BAD[code_]))
    assert result.status == "failed"
    assert {f.code for f in result.errors} == {code_}


def test_41_the_messages() -> None:
    messages = {c: load_dsl(json.dumps(d)).errors[0].message for c, d in BAD.items()}
    assert messages["graph.cycle"] == "Graph contains a cycle: a → b → a"
    assert messages["edge.dangling"] == "Edge edge_0 references unknown node 'ghost'"
    assert messages["node.type_unknown"] == "Unknown node type 'magic' (node m)"
    assert messages["node.type_unsupported"] == "Node type 'knowledge-retrieval' is not supported (node k)"
    assert messages["dsl.version_invalid"] == "Invalid version type, expected str, got float"
    assert (
        messages["dsl.version_unsupported"]
        == "DSL version 9.0.0 is newer than the newest supported version 0.7.x"
    )
    assert messages["app.mode_unsupported"] == (
        "App mode 'chat' cannot be imported: only workflow and advanced-chat apps are supported"
    )
    assert messages["graph.no_start"] == "Workflow has no start node"
    assert messages["graph.multiple_start"] == "Workflow has 2 start nodes; exactly one is required"
    invalid = load_dsl(json.dumps(BAD["node.data_invalid"])).errors[0]
    assert invalid.details == (
        {"loc": ["code_language"], "msg": "must be one of javascript, python3, got 'jinja2'"},
    )
    assert invalid.node_id == "c"


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("0.1.0", ["dsl.version_old"]),
        ("0.1.5", ["dsl.version_old"]),
        ("0.2.0", ["dsl.version_old"]),
        ("0.3.1", ["dsl.version_old"]),
        ("0.4.0", ["dsl.version_old"]),
        ("0.5.0", ["dsl.version_old"]),
        ("0.6.0", []),
        ("0.6.9", []),
        ("0.7.0", []),
        ("0.7.3", []),
        ("0.8.0", ["dsl.version_unsupported"]),
        ("1.0.0", ["dsl.version_unsupported"]),
        ("0.6", ["dsl.version_invalid"]),
    ],
)
def test_every_dsl_version(version: str, expected: list[str]) -> None:
    assert codes(base(version=version)) == expected


def test_absent_version_kind_and_newer_on_request() -> None:
    doc = base()
    del doc["version"]
    del doc["kind"]
    assert codes(doc) == ["dsl.version_old", "dsl.kind_coerced"]
    assert load_dsl(json.dumps(base(version="0.9.0")), allow_newer=True).status == "completed-with-warnings"
    assert codes(base(version="0.9.0"), allow_newer=True) == ["dsl.version_newer"]


def test_document_level_errors() -> None:
    assert codes("version: [unclosed") == ["dsl.yaml_invalid"]
    assert codes("- a list") == ["dsl.yaml_invalid"]
    assert codes(json.dumps({"version": "0.6.0", "kind": "app"})) == ["app.missing"]
    assert codes(json.dumps({"version": "0.6.0", "kind": "app", "app": {"mode": "workflow"}})) == [
        "workflow.missing"
    ]
    assert codes(with_nodes([], [])) == ["graph.empty"]
    assert codes("x" * (10 * 1024 * 1024 + 1)) == ["dsl.too_large"]


def test_all_findings_of_a_stage_are_reported_together() -> None:
    doc = with_nodes(
        [start("start"), node("a", "magic"), node("b", "agent"), {"id": "", "data": {"type": "end"}}, "junk"],
        [],
    )
    assert sorted(codes(doc)) == [
        "node.id_invalid",
        "node.invalid",
        "node.type_unknown",
        "node.type_unsupported",
    ]
    doc = with_nodes(
        [
            start("start"),
            end("e1", a=["x"]),
            node("c", "code", code_language="ruby", variables=[], outputs={}, code=""),
        ],
        [],
    )
    assert sorted(codes(doc)) == ["node.data_invalid", "selector.invalid"]


def test_legacy_shapes_load_and_run() -> None:
    nodes = [
        start("start", "a"),
        node("agg", "variable-assigner", output_type="string", variables=[["start", "a"]]),
        node(
            "if",
            "if-else",
            logical_operator="and",
            conditions=[{"variable_selector": ["agg", "output"], "comparison_operator": "is", "value": "x"}],
        ),
        end("end", r=["agg", "output"]),
    ]
    result = load_dsl(
        json.dumps(with_nodes(nodes, [edge("start", "agg"), edge("agg", "if"), edge("if", "end", "true")]))
    )
    assert result.status == "completed", [f.to_dict() for f in result.findings]


@pytest.mark.parametrize("owner_key", ["parentId", "iteration_id", "container_id"])
def test_legacy_container_owners(owner_key: str) -> None:
    nodes = iteration_nodes()
    for spec in nodes[2:4]:
        spec.pop("parentId")
        if owner_key == "parentId":
            spec["parentId"] = "it"
        else:
            spec["data"][owner_key] = "it"
    result = load_dsl(
        json.dumps(with_nodes(nodes, [edge("start", "it"), edge("it_start", "in"), edge("it", "end")]))
    )
    assert result.graph is not None, [f.to_dict() for f in result.findings]
    assert result.graph.children["it"] == ("it_start", "in")


def test_two_legacy_owners_resolve_to_the_inner_container_or_are_ambiguous() -> None:
    nodes = [
        start("start"),
        node("loop", "loop", start_node_id="ls", loop_count=1, break_conditions=[], logical_operator="and"),
        {"id": "ls", "data": {"type": "loop-start", "title": "", "loop_id": "loop"}},
        {
            "id": "it",
            "data": {
                "type": "iteration",
                "title": "",
                "loop_id": "loop",
                "start_node_id": "is",
                "iterator_selector": ["start", "a"],
                "output_selector": ["in", "output"],
            },
        },
        {
            "id": "is",
            "data": {"type": "iteration-start", "title": "", "loop_id": "loop", "iteration_id": "it"},
        },
        {
            "id": "in",
            "data": {
                "type": "template-transform",
                "title": "",
                "template": "",
                "variables": [],
                "loop_id": "loop",
                "iteration_id": "it",
            },
        },
    ]
    edges = [edge("start", "loop"), edge("ls", "it"), edge("is", "in")]
    result = load_dsl(json.dumps(with_nodes(nodes, edges)))
    assert result.graph is not None, [f.to_dict() for f in result.findings]
    assert result.graph.nodes["in"].container_id == "it"
    assert result.graph.descendants["loop"] == frozenset({"ls", "it", "is", "in"})
    nodes[3]["data"].pop("loop_id")
    assert "container.owner_ambiguous" in codes(with_nodes(nodes, edges))


def test_container_errors() -> None:
    nodes = iteration_nodes()
    nodes[3]["parentId"] = "start"
    assert "container.not_container" in codes(with_nodes(nodes, []))
    nodes = iteration_nodes()
    nodes[3]["parentId"] = "nowhere"
    assert "container.owner_unknown" in codes(with_nodes(nodes, []))
    nodes = iteration_nodes()
    nodes[1]["data"]["start_node_id"] = "in"
    assert codes(with_nodes(nodes, [])) == ["container.start_invalid"]
    assert codes(with_nodes([start("start"), node("le", "loop-end")], [])) == ["container.start_invalid"]
    cyc = [
        start("start"),
        {**node("a", "iteration", start_node_id="x"), "parentId": "b"},
        {**node("b", "loop", start_node_id="y"), "parentId": "a"},
    ]
    assert "container.owner_cycle" in codes(with_nodes(cyc, []))


def test_variables_are_validated() -> None:
    doc = base()
    doc["workflow"]["environment_variables"] = [
        {"name": "ok", "value_type": "string", "value": "a"},
        {"name": "ok", "value_type": "string", "value": "b"},
        {"name": "1bad", "value_type": "string", "value": "a"},
        {"name": "n", "value_type": "number", "value": "abc"},
        {"name": "s", "value_type": "secret", "value": ""},
        {"name": "t", "value_type": "object", "value": {}},
    ]
    doc["workflow"]["conversation_variables"] = [
        {"name": "items", "value_type": "array[string]", "value": '["a"]'},
        {"name": "obj", "value_type": "object", "value": "[1]"},
        {"name": "flag", "value_type": "boolean", "value": "yes"},
    ]
    found = load_dsl(json.dumps(doc)).findings
    assert [(f.code, f.loc[-2]) for f in found] == [
        ("env.invalid", 1),
        ("env.invalid", 2),
        ("env.invalid", 3),
        ("env.invalid", 5),
        ("conversation_var.invalid", 1),
        ("conversation_var.invalid", 2),
    ]


def test_reference_warnings() -> None:
    nodes = [
        start("start"),
        end("end", a=["ghost", "x"], b=["env", "missing"]),
        end("lonely"),
        node("if", "if-else", cases=[{"case_id": "c", "conditions": []}]),
        node("llm", "llm", model={"provider": "langgenius/openai/openai", "name": "gpt"}),
    ]
    edges = [edge("start", "end"), edge("start", "if"), edge("if", "end", "nope"), edge("start", "llm")]
    result = load_dsl(json.dumps(with_nodes(nodes, edges)), available={"code", "http", "files"})
    assert result.status == "completed-with-warnings"
    found = [(f.code, f.node_id or f.edge_id) for f in result.findings]
    assert ("selector.unknown_node", "end") in found
    assert sum(1 for c, _ in found if c == "selector.unknown_node") == 2
    assert ("node.unreachable", "lonely") in found
    assert ("edge.handle_unknown", "edge_2") in found
    assert ("node.port_missing", "llm") in found
    assert result.graph is not None and result.graph.nodes["llm"].data["model"]["provider"] == "openai"
    chat = base(app={"name": "x", "mode": "advanced-chat"})
    assert "node.mode_mismatch" in codes(chat)
    assert "graph.no_output_node" in codes(with_nodes([start("start")], []))
    needs_code = with_nodes([start("start"), code("c", "p", {}, {}), end("end")], chain("start", "c", "end"))
    assert "node.port_missing" not in codes(needs_code)
    assert "node.port_missing" in codes(needs_code, available=["http"])


def test_default_values_are_parsed_and_checked() -> None:
    spec = code(
        "c",
        "p",
        {},
        {"x": "string"},
        error_strategy="default-value",
        default_value=[
            {"key": "n", "type": "number", "value": "1.5"},
            {"key": "o", "type": "object", "value": '{"a": 1}'},
        ],
    )
    result = load_dsl(json.dumps(with_nodes([start("start"), spec], [edge("start", "c")])))
    assert result.graph is not None
    assert dict(result.graph.nodes["c"].default_value) == {"n": 1.5, "o": {"a": 1}}
    spec["data"]["default_value"] = [{"key": "n", "type": "number", "value": "abc"}]
    assert codes(with_nodes([start("start"), spec], [edge("start", "c")])) == ["node.data_invalid"]


async def test_loaded_custom_notes_and_edge_ids() -> None:
    doc = with_nodes(
        [
            start("start"),
            {"id": "note", "type": "custom-note", "data": {"type": ""}},
            end("end", a=["start", "a"]),
        ],
        [{"source": "start", "target": "end"}],
    )
    result = load_dsl(json.dumps(doc))
    assert result.graph is not None and "note" not in result.graph.nodes
    assert [e.id for e in result.graph.edges] == ["edge_0"]
    events = await run(result.graph, make_ports(), {"a": 1})
    assert of(events, ev.EDGE_TAKEN)[0].data["edge_id"] == "edge_0"

"""Acceptance scenarios 1–14 of engine.md §9: ordering, streaming, rendering, conditions, joins.

Code nodes use a fake executor on a virtual clock; every timing asserted is virtual.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from sluice.engine import events as ev
from sluice.engine.pool import VariablePool
from sluice.engine.template import render
from sluice.engine.testkit import Answer, FakeCodeExecutor, VirtualClock, make_ports
from tests.engine.builder import (
    answer,
    brief,
    code,
    cond,
    document,
    edge,
    end,
    ifelse,
    node,
    of,
    run,
    start,
    template,
)

T0 = VirtualClock().now()


def main_graph() -> str:
    nodes = [
        start("start", "name", n="number"),
        code(
            "code",
            "double",
            {"name": ["start", "name"], "n": ["start", "n"]},
            {"doubled": "number", "greeting": "string"},
        ),
        template(
            "tt",
            "{{ greeting }}! doubled={{ doubled }}",
            {"greeting": ["code", "greeting"], "doubled": ["code", "doubled"]},
        ),
        ifelse(
            "ifelse",
            (
                "big",
                [
                    cond(["code", "doubled"], ">", "10"),
                    cond(["tt", "output"], "contains", "{{#start.name#}}"),
                ],
            ),
        ),
        end("end_big", text=["tt", "output"], size=["code", "doubled"]),
        end("end_small", text=["tt", "output"]),
    ]
    edges = [
        edge("start", "code", edge_id="e1"),
        edge("code", "tt", edge_id="e2"),
        edge("tt", "ifelse", edge_id="e3"),
        edge("ifelse", "end_big", "big", "e4"),
        edge("ifelse", "end_small", "false", "e5"),
    ]
    return document(nodes, edges)


def double(inputs: dict[str, Any]) -> dict[str, Any]:
    return {"doubled": inputs["n"] * 2, "greeting": "Hello, " + inputs["name"]}


async def run_main(name: str, n: int) -> list[ev.Event]:
    clock = VirtualClock()
    return await run(
        main_graph(),
        make_ports(clock, code=FakeCodeExecutor(clock, {"double": double})),
        {"name": name, "n": n},
    )


async def test_1_main_big_follows_the_reference_sequence() -> None:
    events = await run_main("Ada", 7)
    assert brief(events) == [
        "run_started",
        "node_started:start",
        "edge_taken:e1",
        "node_succeeded:start",
        "node_started:code",
        "edge_taken:e2",
        "node_succeeded:code",
        "node_started:tt",
        "edge_taken:e3",
        "node_succeeded:tt",
        "node_started:ifelse",
        "edge_skipped:e5",
        "edge_taken:e4",
        "text_chunk:'Hello, Ada! doubled=14'",
        "text_chunk:'\\n'",
        "text_chunk:'14'",
        "node_succeeded:ifelse",
        "node_started:end_big",
        "node_succeeded:end_big",
        "run_succeeded",
    ]
    chunks = of(events, ev.TEXT_CHUNK)
    assert [c.data["selector"] for c in chunks] == [
        ["tt", "output"],
        ["end_big", "answer"],
        ["code", "doubled"],
    ]
    assert [c.data["is_final"] for c in chunks] == [False, False, True]
    assert of(events, ev.NODE_SUCCEEDED, "ifelse")[0].data["result"]["outputs"] == {
        "result": True,
        "selected_case_id": "big",
    }
    final = events[-1]
    assert final.data["outputs"] == {"text": "Hello, Ada! doubled=14", "size": 14}
    assert final.data["total_steps"] == 5
    assert final.data["exceptions_count"] == 0
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    started = of(events, ev.NODE_STARTED)
    assert [e.data["index"] for e in started] == [1, 2, 3, 4, 5]
    assert [e.data["predecessor_node_id"] for e in started] == [None, "start", "code", "tt", "ifelse"]


async def test_2_main_small_skips_before_taking() -> None:
    events = await run_main("Bob", 2)
    names = brief(events)
    assert names.index("edge_skipped:e4") + 1 == names.index("edge_taken:e5")
    assert events[-1].kind == ev.RUN_SUCCEEDED
    assert events[-1].data["outputs"] == {"text": "Hello, Bob! doubled=4"}
    chunks = of(events, ev.TEXT_CHUNK)
    assert [(c.data["text"], c.data["is_final"]) for c in chunks] == [("Hello, Bob! doubled=4", True)]


async def test_3_answer_streaming_in_advanced_chat() -> None:
    nodes = [
        start("start"),
        answer("ans1", "You said {{#sys.query#}}. "),
        code("code", "upper", {"q": ["sys", "query"]}, {"upper": "string", "n": "number"}),
        answer("ans2", "Upper={{#code.upper#}}, len={{#code.n#}}"),
    ]
    edges = [edge("start", "ans1"), edge("start", "code"), edge("ans1", "ans2"), edge("code", "ans2")]
    clock = VirtualClock()
    executor = FakeCodeExecutor(clock, {"upper": lambda i: {"upper": i["q"].upper(), "n": len(i["q"])}})
    events = await run(
        document(nodes, edges, mode="advanced-chat"),
        make_ports(clock, code=executor),
        {},
        system={"query": "hi there"},
    )
    names = brief(events)
    first_chunks = [
        "text_chunk:'You said '",
        "text_chunk:'hi there'",
        "text_chunk:'. '",
        "text_chunk:'Upper='",
    ]
    assert names[1:5] == first_chunks
    assert names.index("node_started:start") == 5
    code_done = names.index("node_succeeded:code")
    assert names[code_done - 3 : code_done] == [
        "text_chunk:'HI THERE'",
        "text_chunk:', len='",
        "text_chunk:'8'",
    ]
    assert events[-1].data["outputs"]["answer"] == "You said hi there. Upper=HI THERE, len=8"
    by_text = {c.data["text"]: c for c in of(events, ev.TEXT_CHUNK)}
    assert by_text["hi there"].data["selector"] == ["sys", "query"]
    assert by_text["hi there"].data["attributed_node_id"] == "ans1"
    assert by_text["HI THERE"].data["attributed_node_id"] == "code"
    assert by_text["8"].data["is_final"] is True


async def test_4_rendering_markdown_and_text_columns() -> None:
    values = {"obj": {"a": 1}, "nums": [1, 2], "strs": ["x"], "flag": True, "ratio": 1.5}
    nodes = [
        start("start"),
        code(
            "v",
            "values",
            {},
            {
                "obj": "object",
                "nums": "array[number]",
                "strs": "array[string]",
                "flag": "boolean",
                "ratio": "number",
            },
        ),
        answer("ans", "{{#v.obj#}}|{{#v.nums#}}|{{#v.strs#}}|{{#v.flag#}}|{{#v.ratio#}}|{{#nope.x#}}"),
    ]
    clock = VirtualClock()
    events = await run(
        document(nodes, [edge("start", "v"), edge("v", "ans")], mode="advanced-chat"),
        make_ports(clock, code=FakeCodeExecutor(clock, {"values": values})),
    )
    assert events[-1].data["outputs"]["answer"] == '{\n  "a": 1\n}|- 1\n- 2|- x|True|1.5|nope.x'
    pool = VariablePool({"v": dict(values)})
    url = "https://api.test/{{#v.obj#}}/{{#v.nums#}}/{{#v.strs#}}/{{#v.flag#}}/{{#v.ratio#}}/{{#nope.x#}}"
    assert render(url, pool) == 'https://api.test/{"a": 1}/[1, 2]/["x"]/True/1.5/nope.x'


async def test_5_start_outputs_are_a_pool_snapshot_without_sys_copies() -> None:
    nodes = [start("start", "name"), end("end", name=["start", "name"])]
    env = [
        {
            "id": "1",
            "name": "greeting_prefix",
            "value_type": "string",
            "value": "Hi",
            "selector": ["env", "greeting_prefix"],
        }
    ]
    system = {
        "files": [],
        "user_id": "u1",
        "app_id": "a1",
        "workflow_id": "w1",
        "workflow_run_id": "run-1",
        "timestamp": 1,
    }
    events = await run(
        document(nodes, [edge("start", "end")], env=env), make_ports(), {"name": "Ada"}, system=system
    )
    outputs = of(events, ev.NODE_SUCCEEDED, "start")[0].data["result"]["outputs"]
    assert set(outputs) == {"name", "env.greeting_prefix"} | {f"sys.{k}" for k in system}
    assert "sys.name" not in outputs
    assert of(events, ev.NODE_SUCCEEDED, "start")[0].data["result"]["inputs"] == {"name": "Ada"}


# -- scenarios 6–10: if-else operators in a running graph ---------------------------------------


def decide_graph(conditions: list[dict[str, Any]], operator: str = "and", **typed: str) -> str:
    nodes = [
        start("start", **typed),
        ifelse("if", ("yes", conditions), operator=operator),
        end("t", r=["if", "result"]),
        end("f", r=["if", "result"]),
    ]
    return document(nodes, [edge("start", "if"), edge("if", "t", "yes"), edge("if", "f", "false")])


async def decide(conditions: list[dict[str, Any]], inputs: dict[str, Any], operator: str = "and") -> Any:
    typed = {k: "paragraph" for k in inputs}
    events = await run(decide_graph(conditions, operator, **typed), make_ports(), inputs)
    failed = of(events, ev.NODE_FAILED, "if")
    if failed:
        assert events[-1].kind == ev.RUN_FAILED
        return ("failed", failed[0].data["error"])
    return of(events, ev.NODE_SUCCEEDED, "if")[0].data["result"]["outputs"]["result"]


V = ["start", "v"]
E = ["start", "e"]

OPERATOR_CASES = [
    # 6: strings
    ("contains", "abc", "b", True),
    ("contains", None, "b", False),
    ("not contains", "", "b", True),
    ("start with", "abc", "a", True),
    ("end with", "abc", "c", True),
    ("is", None, "x", False),
    ("is not", None, "x", False),
    ("empty", 0, None, True),
    ("empty", False, None, True),
    ("not empty", "a", None, True),
    # 7: numbers
    ("=", 7, "7", True),
    ("≠", 7, "8", True),
    (">", 14, "10", True),
    ("<", 1.5, "2.5", True),
    ("≥", 2.5, "2.5", True),
    ("≤", 2.5, "2.4", False),
    (">", None, "1", False),
    # 8: null and membership
    ("null", None, None, True),
    ("not null", 1, None, True),
    ("exists", 1, None, True),
    ("not exists", None, None, True),
    ("in", "b", ["a", "b"], True),
    ("not in", None, ["a"], True),
    ("all of", ["a", "b", "c"], ["a", "c"], True),
    # 9: booleans and arrays
    ("is", True, "true", True),
    ("contains", ["x", "y"], "y", True),
    ("contains", [1, 2], "1", False),
]


@pytest.mark.parametrize(("operator", "actual", "expected", "result"), OPERATOR_CASES)
async def test_6_to_9_operators(operator: str, actual: Any, expected: Any, result: bool) -> None:
    assert await decide([cond(V, operator, expected)], {"v": actual}) is result


async def test_7_equality_failures() -> None:
    assert await decide([cond(V, "=", "7.0")], {"v": 7}) == (
        "failed",
        "invalid literal for int() with base 10: '7.0'",
    )
    outcome = await decide([cond(V, "=", "7")], {"v": "7"})
    assert outcome[0] == "failed"


async def test_9_file_conditions() -> None:
    pdf = {
        "dify_model_identity": "__dify__file__",
        "type": "document",
        "extension": ".pdf",
        "filename": "a.pdf",
    }
    assert await decide([cond(V, "contains", "pdf")], {"v": [pdf]}) == ("failed", "Sub variable is required")
    sub = cond(V, "contains")
    sub["sub_variable_condition"] = {
        "logical_operator": "and",
        "conditions": [{"key": "extension", "comparison_operator": "is", "value": "pdf"}],
    }
    assert await decide([sub], {"v": [pdf]}) is True


async def test_10_cases_in_order_or_short_circuit_and_legacy_shape() -> None:
    nodes = [
        start("start", v="number"),
        node(
            "if",
            "if-else",
            cases=[
                {"case_id": "one", "logical_operator": "and", "conditions": [cond(V, ">", "5")]},
                {"case_id": "two", "logical_operator": "and", "conditions": [cond(V, ">", "0")]},
                {"case_id": "three", "logical_operator": "and", "conditions": [cond(V, ">", "-1")]},
            ],
        ),
        end("end", c=["if", "selected_case_id"]),
    ]
    edges = [edge("start", "if"), edge("if", "end", "two")]
    events = await run(document(nodes, edges), make_ports(), {"v": 1})
    assert of(events, ev.NODE_SUCCEEDED, "if")[0].data["result"]["edge_source_handle"] == "two"
    assert await decide([cond(V, "=", "1"), cond(["nope", "missing"], "=", "1")], {"v": 1}, "or") is True
    legacy = node("if", "if-else", logical_operator="and", conditions=[cond(V, "=", "1")])
    graph = document(
        [start("start", v="number"), legacy, end("end", r=["if", "result"])],
        [edge("start", "if"), edge("if", "end", "true")],
    )
    events = await run(graph, make_ports(), {"v": 1})
    assert of(events, ev.NODE_SUCCEEDED, "if")[0].data["result"]["edge_source_handle"] == "true"
    assert events[-1].data["outputs"] == {"r": True}


async def test_11_absent_variable_fails_the_run_and_cancels_the_rest() -> None:
    nodes = [
        start("start"),
        code("slow", "slow", {}, {"v": "string"}),
        ifelse("bad", ("c", [cond(["nope", "missing"], "=", "1")])),
        end("end", v=["slow", "v"]),
    ]
    edges = [edge("start", "slow"), edge("start", "bad"), edge("slow", "end"), edge("bad", "end", "c")]
    clock = VirtualClock()
    executor = FakeCodeExecutor(clock, {"slow": Answer({"v": "x"}, delay=0.4)})
    events = await run(document(nodes, edges), make_ports(clock, code=executor))
    failed = of(events, ev.NODE_FAILED, "bad")
    assert failed[0].data["error"] == "Variable ['nope', 'missing'] not found"
    assert failed[0].data["result"]["error_type"] is None
    assert events[-1].kind == ev.RUN_FAILED
    assert events[-1].data["exceptions_count"] == 1
    assert events[-1].data["error"] == "Variable ['nope', 'missing'] not found"
    assert not [e for e in events if e.node and e.node.node_id == "slow" and e.kind in ev.NODE_TERMINAL]
    assert of(events, ev.NODE_STARTED, "slow")  # started, then cancelled before it could finish


async def test_12_join_runs_once_after_its_taken_branch() -> None:
    nodes = [
        start("start", x="number"),
        ifelse("if", ("pos", [cond(["start", "x"], ">", "0")])),
        template("A", "a", {}),
        template("B", "b", {}),
        template("J", "joined", {}),
        end("end", r=["J", "output"]),
    ]
    edges = [
        edge("start", "if"),
        edge("if", "A", "pos", "ea"),
        edge("if", "B", "false", "eb"),
        edge("A", "J", edge_id="aj"),
        edge("B", "J", edge_id="bj"),
        edge("J", "end"),
    ]
    events = await run(document(nodes, edges), make_ports(), {"x": 1})
    names = brief(events)
    assert names.count("node_started:J") == 1
    assert names.index("edge_skipped:bj") < names.index("node_started:A")
    assert names.index("node_succeeded:A") < names.index("node_started:J")
    assert of(events, ev.NODE_STARTED, "J")[0].data["predecessor_node_id"] == "A"
    assert "node_started:B" not in names


async def test_13_skips_propagate_depth_first() -> None:
    nodes = [
        start("start"),
        ifelse("if", ("case", [cond(["sys", "user_id"], "not empty")])),
        template("B", "b", {}),
        template("C", "c", {}),
        end("end1"),
        end("end2"),
    ]
    edges = [
        edge("start", "if"),
        edge("if", "B", "false", "ifB"),
        edge("B", "C", edge_id="BC"),
        edge("C", "end2", edge_id="Cend2"),
        edge("if", "end1", "case", "ifend1"),
    ]
    events = await run(document(nodes, edges), make_ports(), system={"user_id": "u"})
    names = brief(events)
    skipped = [n for n in names if n.startswith("edge_skipped")]
    assert skipped == ["edge_skipped:ifB", "edge_skipped:BC", "edge_skipped:Cend2"]
    assert names.index("edge_skipped:Cend2") < names.index("edge_taken:ifend1")
    assert not [e for e in events if e.node and e.node.node_id in ("B", "C", "end2")]


def parallel_join_graph() -> str:
    nodes = [
        start("start", x="number"),
        code("slow_a", "slow_a", {}, {"v": "string"}),
        code("slow_b", "slow_b", {}, {"v": "string"}),
        ifelse("branch", ("pos", [cond(["start", "x"], ">", "0")])),
        template("pos_path", "positive", {}),
        template("neg_path", "negative", {}),
        node(
            "agg",
            "variable-aggregator",
            output_type="string",
            variables=[["neg_path", "output"], ["pos_path", "output"]],
        ),
        template(
            "join",
            "{{ a }}{{ b }}-{{ sign }}",
            {"a": ["slow_a", "v"], "b": ["slow_b", "v"], "sign": ["agg", "output"]},
        ),
        end("end", r=["join", "output"]),
    ]
    edges = [
        edge("start", "slow_a"),
        edge("start", "slow_b"),
        edge("start", "branch"),
        edge("branch", "pos_path", "pos"),
        edge("branch", "neg_path", "false"),
        edge("pos_path", "agg"),
        edge("neg_path", "agg"),
        edge("slow_a", "join"),
        edge("slow_b", "join"),
        edge("agg", "join"),
        edge("join", "end"),
    ]
    return document(nodes, edges)


@pytest.mark.parametrize(("x", "expected"), [(5, "AB-positive"), (-5, "AB-negative")])
async def test_14_parallel_join_waits_for_every_branch(x: int, expected: str) -> None:
    clock = VirtualClock()
    executor = FakeCodeExecutor(
        clock, {"slow_a": Answer({"v": "A"}, delay=0.5), "slow_b": Answer({"v": "B"}, delay=0.5)}
    )
    events = await run(parallel_join_graph(), make_ports(clock, code=executor), {"x": x})
    assert events[-1].data["outputs"] == {"r": expected}
    join_started = of(events, ev.NODE_STARTED, "join")[0]
    assert join_started.at - T0 == timedelta(seconds=0.5)

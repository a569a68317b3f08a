"""Acceptance scenarios 15–20 and 23–27 of engine.md §9: core nodes, code validation, error
strategies and retries. (21–22, HTTP and SSRF, are in the http-request node's tests.)"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from sluice.engine import events as ev
from sluice.engine.ports import CodeExecutionError
from sluice.engine.testkit import Answer, FakeCodeExecutor, VirtualClock, make_ports
from tests.engine.builder import (
    answer,
    brief,
    chain,
    code,
    document,
    edge,
    end,
    node,
    of,
    run,
    start,
    template,
)

T0 = VirtualClock().now()


def conversation(name: str, value_type: str, value: Any) -> dict[str, Any]:
    return {
        "id": name,
        "name": name,
        "value_type": value_type,
        "value": value,
        "selector": ["conversation", name],
    }


# -- 15 aggregator -------------------------------------------------------------------------------


@pytest.mark.parametrize("type_", ["variable-aggregator", "variable-assigner"])
async def test_15_aggregator(type_: str) -> None:
    nodes = [
        start("start", "b"),
        node("first", type_, variables=[["nope", "x"], ["start", "b"], ["sys", "user_id"]]),
        node("none", type_, variables=[["nope", "x"]]),
        node(
            "groups",
            type_,
            advanced_settings={
                "group_enabled": True,
                "groups": [
                    {
                        "group_name": "g1",
                        "output_type": "string",
                        "variables": [["nope", "x"], ["start", "b"]],
                    },
                    {"group_name": "g2", "output_type": "string", "variables": [["nope", "y"]]},
                ],
            },
        ),
        end("end", first=["first", "output"], none=["none", "output"], g1=["groups", "g1", "output"]),
    ]
    events = await run(
        document(nodes, chain("start", "first", "none", "groups", "end")), make_ports(), {"b": "B"}
    )
    outputs = {e.node.node_id: e.data["result"]["outputs"] for e in of(events, ev.NODE_SUCCEEDED) if e.node}
    assert outputs["first"] == {"output": "B"}
    assert outputs["none"] == {}
    assert outputs["groups"] == {"g1": {"output": "B"}}
    assert events[-1].data["outputs"] == {"first": "B", "none": None, "g1": "B"}


# -- 16, 17 assigner -----------------------------------------------------------------------------


def assigner_graph(
    *assigners: dict[str, Any], conv: list[dict[str, Any]], inputs: tuple[str, ...] = ()
) -> str:
    ids = [a["id"] for a in assigners]
    report = answer("ans", " ".join(f"{{{{#conversation.{c['name']}#}}}}" for c in conv))
    nodes = [start("start", *inputs), *assigners, report]
    return document(nodes, chain("start", *ids, "ans"), mode="advanced-chat", conversation=conv)


def v1(node_id: str, target: str, mode: str, source: list[str] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"assigned_variable_selector": ["conversation", target], "write_mode": mode}
    if source is not None:
        data["input_variable_selector"] = source
    return node(node_id, "assigner", **data)


async def test_16_assigner_v1_modes() -> None:
    graph = assigner_graph(
        v1("a1", "items", "append", ["start", "x"]),
        v1("a2", "items", "append", ["start", "empty"]),
        v1("a3", "copy", "over-write", ["conversation", "items"]),
        v1("a4", "items", "clear"),
        conv=[conversation("items", "array[string]", []), conversation("copy", "array[string]", [])],
        inputs=("x", "empty"),
    )
    events = await run(graph, make_ports(), {"x": "one", "empty": ""})
    updates = [
        (e.node.node_id, e.data["value"], e.data["value_type"])
        for e in of(events, ev.NODE_VARIABLE_UPDATED)
        if e.node
    ]
    assert updates == [
        ("a1", ["one"], "array[string]"),
        ("a2", ["one", ""], "array[string]"),
        ("a3", ["one", ""], "array[string]"),
        ("a4", [], "array[string]"),
    ]
    names = brief(events)
    assert names.index("node_variable_updated:a1") < names.index(
        "edge_taken:" + of(events, ev.EDGE_TAKEN)[1].data["edge_id"]
    )
    processed = of(events, ev.NODE_SUCCEEDED, "a1")[0].data["result"]["process_data"]
    assert processed == {
        "__updated_variables": [
            {
                "name": "items",
                "selector": ["conversation", "items"],
                "value_type": "array[string]",
                "new_value": ["one"],
            }
        ]
    }
    missing = assigner_graph(
        v1("a1", "items", "over-write", ["start", "nothing"]),
        conv=[conversation("items", "array[string]", [])],
    )
    events = await run(missing, make_ports())
    assert of(events, ev.NODE_FAILED, "a1")[0].data["error"] == "input value not found"


def v2(node_id: str, *items: tuple[str, str, str, Any]) -> dict[str, Any]:
    return node(
        node_id,
        "assigner",
        version="2",
        items=[
            {"variable_selector": ["conversation", t], "operation": op, "input_type": kind, "value": value}
            for t, op, kind, value in items
        ],
    )


async def test_17_assigner_v2_operations() -> None:
    graph = assigner_graph(
        v2(
            "a",
            ("n", "+=", "constant", 2),
            ("n", "*=", "constant", 3),
            ("n", "-=", "constant", 1),
            ("list", "extend", "variable", ["start", "more"]),
            ("empty", "remove-first", "variable", None),
            ("empty", "remove-last", "variable", None),
            ("obj", "set", "constant", '{"k": [1, 2]}'),
            ("text", "over-write", "variable", ["start", "nothing"]),
        ),
        conv=[
            conversation("n", "number", 1),
            conversation("list", "array[number]", [1]),
            conversation("empty", "array[string]", []),
            conversation("obj", "object", {}),
            conversation("text", "string", "kept"),
        ],
        inputs=("more", "nothing"),
    )
    events = await run(graph, make_ports(), {"more": [2, 3], "nothing": None})
    updates = {e.data["selector"][1]: e.data["value"] for e in of(events, ev.NODE_VARIABLE_UPDATED)}
    assert updates == {"n": 8, "list": [1, 2, 3], "empty": [], "obj": {"k": [1, 2]}}
    result = of(events, ev.NODE_SUCCEEDED, "a")[0].data["result"]
    assert result["process_data"]["n"] == 8
    assert [u["name"] for u in result["process_data"]["__updated_variables"]] == ["n", "list", "empty", "obj"]
    zero = assigner_graph(v2("a", ("n", "/=", "constant", 0)), conv=[conversation("n", "number", 1)])
    events = await run(zero, make_ports())
    failed = of(events, ev.NODE_FAILED, "a")[0]
    assert failed.data["error"] == "Invalid input value 0"
    bad = assigner_graph(v2("a", ("n", "append", "constant", 1)), conv=[conversation("n", "number", 1)])
    events = await run(bad, make_ports())
    assert (
        of(events, ev.NODE_FAILED, "a")[0].data["error"]
        == "Operation append is not supported for type number"
    )
    bad = assigner_graph(
        v2("a", ("s", "extend", "constant", ["x"])), conv=[conversation("s", "array[string]", [])]
    )
    events = await run(bad, make_ports())
    assert (
        of(events, ev.NODE_FAILED, "a")[0].data["error"]
        == "Input type constant is not supported for operation extend"
    )


# -- 18 list operator ----------------------------------------------------------------------------


def list_graph(**config: Any) -> str:
    nodes = [
        start("start", items="json_object"),
        node(
            "lo",
            "list-operator",
            variable=["start", "items"],
            filter_by=config.get("filter_by", {"enabled": False, "conditions": []}),
            order_by=config.get("order_by", {"enabled": False, "key": "", "value": "asc"}),
            limit=config.get("limit", {"enabled": False, "size": -1}),
            extract_by=config.get("extract_by", {"enabled": False, "serial": "1"}),
        ),
        end("end", result=["lo", "result"], first=["lo", "first_record"], last=["lo", "last_record"]),
    ]
    nodes[0]["data"]["variables"][0]["type"] = "paragraph"
    return document(nodes, chain("start", "lo", "end"))


async def list_result(inputs: dict[str, Any], **config: Any) -> Any:
    events = await run(list_graph(**config), make_ports(), inputs)
    failed = of(events, ev.NODE_FAILED, "lo")
    return ("failed", failed[0].data["error"]) if failed else events[-1].data["outputs"]


async def test_18_list_operator() -> None:
    items = {"items": ["b", "a", "c", "ab"]}
    out = await list_result(
        items,
        filter_by={
            "enabled": True,
            "conditions": [{"key": "", "comparison_operator": "contains", "value": "a"}],
        },
        order_by={"enabled": True, "key": "", "value": "desc"},
        limit={"enabled": True, "size": 2},
    )
    assert out == {"result": ["ab", "a"], "first": "ab", "last": "a"}
    assert (await list_result(items, extract_by={"enabled": True, "serial": "2"}))["result"] == ["a"]
    assert await list_result(items, extract_by={"enabled": True, "serial": "9"}) == (
        "failed",
        "Invalid serial index: must be <= 4, got 9",
    )
    assert await list_result({"items": []}) == {"result": [], "first": None, "last": None}
    assert await list_result({}) == ("failed", "Variable not found for selector: ['start', 'items']")


# -- 19 template-transform -----------------------------------------------------------------------


async def test_19_template_transform() -> None:
    text = (
        "{% for x in xs %}{{ x | upper }}{% if not loop.last %},{% endif %}{% endfor %}"
        "|{{ missing }}|{{ n | round(1) }}"
    )
    nodes = [
        start("start"),
        template("tt", text, {"xs": ["start", "xs"], "n": ["start", "n"]}),
        end("end", r=["tt", "output"]),
    ]
    events = await run(
        document(nodes, chain("start", "tt", "end")), make_ports(), {"xs": ["a", "b"], "n": 2.26}
    )
    assert events[-1].data["outputs"] == {"r": "A,B||2.3"}
    big = [start("start"), template("tt", "{{ 'x' * 400001 }}", {}), end("end", r=["tt", "output"])]
    events = await run(document(big, chain("start", "tt", "end")), make_ports())
    failed = of(events, ev.NODE_FAILED, "tt")[0]
    assert failed.data["error"] == "Output length exceeds 400000 characters"
    assert failed.data["result"]["error_type"] is None


# -- 20 code output validation -------------------------------------------------------------------


async def code_outcome(result: Any, outputs: dict[str, str]) -> Any:
    clock = VirtualClock()
    nodes = [start("start"), code("c", "p", {}, outputs), end("end")]
    events = await run(
        document(nodes, chain("start", "c", "end")),
        make_ports(clock, code=FakeCodeExecutor(clock, {"p": result})),
    )
    failed = of(events, ev.NODE_FAILED, "c")
    if failed:
        return (failed[0].data["result"]["error_type"], failed[0].data["error"])
    return of(events, ev.NODE_SUCCEEDED, "c")[0].data["result"]["outputs"]


async def test_20_code_output_validation() -> None:
    assert await code_outcome({}, {"x": "string"}) == ("OutputValidationError", "Output x is missing.")
    assert await code_outcome({"x": "a", "y": 1}, {"x": "string"}) == (
        "CodeNodeError",
        "Not all output parameters are validated.",
    )
    assert await code_outcome({"x": 1}, {"x": "string"}) == (
        "OutputValidationError",
        "Output x must be a string, got int instead.",
    )
    assert await code_outcome({"x": ["s"] * 31}, {"x": "array[string]"}) == (
        "OutputValidationError",
        "The length of output variable `x` must be less than 30 elements.",
    )
    deep: dict[str, Any] = {"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}}
    assert await code_outcome({"x": deep}, {"x": "object"}) == (
        "DepthLimitError",
        "Depth limit 5 reached, object too deep.",
    )
    assert await code_outcome(
        {"x": None, "n": True, "s": "1e+5"}, {"x": "string", "n": "number", "s": "number"}
    ) == {
        "x": None,
        "n": 1,
        "s": 100000.0,
    }
    assert await code_outcome({"x": "a\x00b"}, {"x": "string"}) == {"x": "ab"}
    assert await code_outcome({"x": 10**20}, {"x": "number"}) == (
        "OutputValidationError",
        "Output variable `x` is out of range, it must be between "
        "-9223372036854775808 and 9223372036854775807.",
    )
    assert await code_outcome(Answer([1]), {"x": "string"}) == (
        "CodeExecutionError",
        "Result must be a dict, got list",
    )


async def test_code_without_executor_fails_as_not_configured() -> None:
    nodes = [start("start"), code("c", "p", {}, {"x": "string"}), end("end")]
    events = await run(document(nodes, chain("start", "c", "end")), make_ports())
    failed = of(events, ev.NODE_FAILED, "c")[0]
    assert (failed.data["result"]["error_type"], failed.data["error"]) == (
        "ServiceNotConfiguredError",
        "Code execution is not configured",
    )


# -- 23–27 error strategies and retries ----------------------------------------------------------


def flaky_graph(strategy: dict[str, Any], outputs: dict[str, str] | None = None) -> str:
    nodes = [
        start("start"),
        code("flaky", "flaky", {}, outputs or {"x": "string"}, **strategy),
        template("on_ok", "ok", {}),
        template("on_fail", "{{ m }}", {"m": ["flaky", "error_message"]}),
        end("end", ok=["on_ok", "output"], fail=["on_fail", "output"], x=["flaky", "x"]),
    ]
    edges = [
        edge("start", "flaky"),
        edge("flaky", "on_ok", "source", "ok"),
        edge("flaky", "on_fail", "fail-branch", "fail"),
        edge("on_ok", "end"),
        edge("on_fail", "end"),
    ]
    return document(nodes, edges)


BOOM = Answer(CodeExecutionError("RuntimeError: boom"))


async def test_23_fail_branch() -> None:
    clock = VirtualClock()
    events = await run(
        flaky_graph({"error_strategy": "fail-branch"}),
        make_ports(clock, code=FakeCodeExecutor(clock, {"flaky": BOOM})),
    )
    names = brief(events)
    assert names.index("edge_skipped:ok") < names.index("edge_taken:fail")
    exc = of(events, ev.NODE_EXCEPTION, "flaky")[0]
    assert exc.data["result"]["outputs"] == {
        "error_message": "RuntimeError: boom",
        "error_type": "CodeExecutionError",
    }
    assert exc.data["result"]["metadata"] == {"error_strategy": "fail-branch"}
    assert exc.data["result"]["status"] == "exception"
    assert events[-1].kind == ev.RUN_PARTIAL_SUCCEEDED
    assert events[-1].data["outputs"] == {"ok": None, "fail": "RuntimeError: boom", "x": None}


async def test_24_default_value() -> None:
    clock = VirtualClock()
    strategy = {
        "error_strategy": "default-value",
        "default_value": [{"key": "x", "type": "string", "value": "fallback"}],
    }
    nodes = [start("start"), code("c", "p", {}, {"x": "string"}, **strategy), end("end", x=["c", "x"])]
    events = await run(
        document(nodes, chain("start", "c", "end")),
        make_ports(clock, code=FakeCodeExecutor(clock, {"p": {"x": 1}})),
    )
    exc = of(events, ev.NODE_EXCEPTION, "c")[0]
    assert exc.data["result"]["outputs"] == {
        "x": "fallback",
        "error_message": "Output x must be a string, got int instead.",
        "error_type": "OutputValidationError",
    }
    assert of(events, ev.NODE_SUCCEEDED, "end")
    assert events[-1].data["outputs"] == {"x": "fallback"}


RETRY = {"retry_config": {"retry_enabled": True, "max_retries": 2, "retry_interval": 100}}


async def test_25_retry_then_fail_branch_then_default_value() -> None:
    clock = VirtualClock()
    default = {
        "error_strategy": "default-value",
        "default_value": [{"key": "x", "type": "string", "value": "fallback"}],
    }
    nodes = [
        start("start"),
        code("flaky", "flaky", {}, {"x": "string"}, error_strategy="fail-branch", **RETRY),
        code("typed", "typed", {}, {"x": "string"}, **default),
        end("end", x=["typed", "x"]),
    ]
    edges = [edge("start", "flaky"), edge("flaky", "typed", "fail-branch"), edge("typed", "end")]
    executor = FakeCodeExecutor(clock, {"flaky": BOOM, "typed": {"x": 1}})
    events = await run(document(nodes, edges), make_ports(clock, code=executor))
    assert len(of(events, ev.NODE_STARTED, "flaky")) == 1
    retries = of(events, ev.NODE_RETRY, "flaky")
    assert [r.data["retry_index"] for r in retries] == [1, 2]
    assert [r.at - T0 for r in retries] == [timedelta(seconds=0.1), timedelta(seconds=0.2)]
    assert retries[0].data["error"] == "RuntimeError: boom"
    assert retries[0].data["result"]["status"] == "failed"
    assert of(events, ev.NODE_EXCEPTION, "flaky")[0].at - T0 == timedelta(seconds=0.2)
    assert of(events, ev.NODE_EXCEPTION, "typed")
    assert len(executor.calls) == 4
    assert events[-1].kind == ev.RUN_PARTIAL_SUCCEEDED
    assert events[-1].data["exceptions_count"] == 4
    assert events[-1].data["total_steps"] == 6  # start, three attempts of flaky, typed, end
    assert events[-1].data["outputs"] == {"x": "fallback"}


async def test_25_retry_then_default_value_counts_every_attempt() -> None:
    clock = VirtualClock()
    strategy = {
        "error_strategy": "default-value",
        "default_value": [{"key": "x", "type": "string", "value": "fallback"}],
        **RETRY,
    }
    nodes = [start("start"), code("c", "p", {}, {"x": "string"}, **strategy), end("end", x=["c", "x"])]
    executor = FakeCodeExecutor(clock, {"p": {"x": 1}})
    events = await run(document(nodes, chain("start", "c", "end")), make_ports(clock, code=executor))
    assert [r.data["retry_index"] for r in of(events, ev.NODE_RETRY)] == [1, 2]
    assert events[-1].kind == ev.RUN_PARTIAL_SUCCEEDED
    assert events[-1].data["exceptions_count"] == 3


async def test_26_retry_then_success() -> None:
    clock = VirtualClock()
    executor = FakeCodeExecutor(clock, {"p": [BOOM, Answer({"x": "fine"})]})
    nodes = [start("start"), code("c", "p", {}, {"x": "string"}, **RETRY), end("end", x=["c", "x"])]
    events = await run(document(nodes, chain("start", "c", "end")), make_ports(clock, code=executor))
    assert of(events, ev.NODE_SUCCEEDED, "c")
    assert len(of(events, ev.NODE_RETRY, "c")) == 1
    assert events[-1].kind == ev.RUN_PARTIAL_SUCCEEDED
    assert events[-1].data["exceptions_count"] == 1
    assert events[-1].data["total_steps"] == 4  # start, 2 attempts of c, end


async def test_27_no_retry_for_other_node_types() -> None:
    nodes = [start("start"), template("tt", "{{ 'x' * 400001 }}", {}, **RETRY), end("end")]
    events = await run(document(nodes, chain("start", "tt", "end")), make_ports())
    assert not of(events, ev.NODE_RETRY)
    assert of(events, ev.NODE_FAILED, "tt")
    assert events[-1].kind == ev.RUN_FAILED

"""Acceptance scenarios 28–33 of engine.md §9: iteration and loop containers."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from sluice.engine import events as ev
from sluice.engine.ports import CodeExecutionError
from sluice.engine.testkit import Answer, FakeCodeExecutor, VirtualClock, make_ports
from tests.engine.builder import brief, code, cond, document, edge, end, node, of, run, start, template

T0 = VirtualClock().now()


def inside(owner: str, spec: dict[str, Any]) -> dict[str, Any]:
    spec["data"]["container_id"] = owner
    return spec


def iteration_graph(inner: dict[str, Any], *, output: str = "output", **options: Any) -> str:
    nodes = [
        start("start"),
        code("mk", "mk", {}, {"items": "array[string]"}),
        node(
            "it",
            "iteration",
            start_node_id="it_start",
            iterator_selector=["mk", "items"],
            output_selector=["inner", output],
            **options,
        ),
        inside("it", node("it_start", "iteration-start")),
        inside("it", inner),
        end("end", out=["it", "output"]),
    ]
    edges = [edge("start", "mk"), edge("mk", "it"), edge("it_start", "inner"), edge("it", "end")]
    return document(nodes, edges)


async def run_iteration(
    items: Any, inner: dict[str, Any], programs: dict[str, Any] | None = None, **options: Any
) -> list[ev.Event]:
    clock = VirtualClock()
    executor = FakeCodeExecutor(clock, {"mk": {"items": items}, **(programs or {})})
    return await run(iteration_graph(inner, **options), make_ports(clock, code=executor))


async def test_28_iteration() -> None:
    inner = template("inner", "{{ i }}:{{ item | upper }}", {"i": ["it", "index"], "item": ["it", "item"]})
    events = await run_iteration(["a", "b", "c"], inner)
    assert events[-1].data["outputs"] == {"out": ["0:A", "1:B", "2:C"]}
    assert [e.data["index"] for e in of(events, ev.ITERATION_NEXT)] == [0, 1, 2]
    children = [e for e in events if e.container_id == "it"]
    assert children and all(
        e.frame_id.startswith(of(events, ev.NODE_STARTED, "it")[0].node.execution_id) for e in children
    )  # type: ignore[union-attr]
    inner_done = of(events, ev.NODE_SUCCEEDED, "inner")
    assert [e.node.frame_index for e in inner_done] == [0, 1, 2]  # type: ignore[union-attr]
    assert [e.node.container_type for e in inner_done] == ["iteration"] * 3  # type: ignore[union-attr]
    assert inner_done[1].data["result"]["metadata"] == {"iteration_id": "it", "iteration_index": 1}
    assert inner_done[1].frame_id.endswith(":iteration:1")
    done = of(events, ev.ITERATION_SUCCEEDED)[0]
    assert done.data["steps"] == 3
    assert done.data["outputs"] == {"output": ["0:A", "1:B", "2:C"]}
    started = of(events, ev.ITERATION_STARTED)[0]
    assert started.data["metadata"] == {"iteration_length": 3}
    assert started.data["inputs"] == {"iterator_selector": ["a", "b", "c"]}
    names = brief(events)
    assert names.index("iteration_started:it") == names.index("node_started:it") + 1
    assert names.index("iteration_succeeded:it") < names.index(
        "edge_taken:" + of(events, ev.EDGE_TAKEN)[-1].data["edge_id"]
    )
    assert names.index("node_succeeded:it") > names.index("iteration_succeeded:it")
    assert not [e for e in events if e.node and e.node.node_id == "it_start"]
    assert events[-1].data["total_steps"] == 4  # start, mk, it, end: children excluded
    frames = of(events, ev.FRAME_FINISHED)
    assert [(f.data["index"], f.data["status"], f.data["output"]) for f in frames] == [
        (0, "succeeded", "0:A"),
        (1, "succeeded", "1:B"),
        (2, "succeeded", "2:C"),
    ]
    assert of(events, ev.NODE_STARTED, "inner")[0].data["predecessor_node_id"] == "it_start"


async def test_29_parallel_iteration_orders_outputs_by_index() -> None:
    inner = code("inner", "work", {"item": ["it", "item"]}, {"output": "string"})
    work = [Answer(lambda i: {"output": i["item"] * 2}, delay=d) for d in (0.3, 0.2, 0.1)]
    events = await run_iteration(["a", "b", "c"], inner, {"work": work}, is_parallel=True, parallel_nums=3)
    assert events[-1].data["outputs"] == {"out": ["aa", "bb", "cc"]}
    finished = [e.node.frame_index for e in of(events, ev.NODE_SUCCEEDED, "inner")]  # type: ignore[union-attr]
    assert finished == [2, 1, 0]
    names = brief(events)
    nexts = [i for i, n in enumerate(names) if n == "iteration_next:it"]
    assert len(nexts) == 3 and max(nexts) < names.index("node_started:inner")
    done = of(events, ev.ITERATION_SUCCEEDED)[0]
    assert done.at - T0 == timedelta(seconds=0.3)
    assert done.data["metadata"]["iteration_duration_map"] == {"0": 0.3, "1": 0.2, "2": 0.1}


async def test_29_parallel_iteration_starts_later_items_as_slots_free() -> None:
    inner = code("inner", "work", {"item": ["it", "item"]}, {"output": "string"})
    work = [Answer(lambda i: {"output": i["item"]}, delay=d) for d in (0.3, 0.1, 0.1)]
    events = await run_iteration(["a", "b", "c"], inner, {"work": work}, is_parallel=True, parallel_nums=2)
    names = brief(events)
    third = [i for i, n in enumerate(names) if n == "iteration_next:it"][2]
    first_done = names.index("node_succeeded:inner")
    assert third > first_done
    assert of(events, ev.ITERATION_NEXT)[2].at - T0 == timedelta(seconds=0.1)
    assert events[-1].data["outputs"] == {"out": ["a", "b", "c"]}


FAIL_SECOND = [
    Answer({"output": "r0"}),
    Answer(CodeExecutionError("ValueError: item 1")),
    Answer({"output": "r2"}),
]


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("continue-on-error", ["r0", None, "r2"]), ("remove-abnormal-output", ["r0", "r2"])],
)
async def test_30_iteration_error_modes(mode: str, expected: list[Any]) -> None:
    inner = code("inner", "work", {"item": ["it", "item"]}, {"output": "string"})
    events = await run_iteration(["a", "b", "c"], inner, {"work": FAIL_SECOND}, error_handle_mode=mode)
    assert events[-1].kind == ev.RUN_PARTIAL_SUCCEEDED  # the failed child attempt counts (§5.7)
    assert events[-1].data["exceptions_count"] == 1
    assert events[-1].data["outputs"] == {"out": expected}
    assert of(events, ev.NODE_FAILED, "inner")
    assert [f.data["status"] for f in of(events, ev.FRAME_FINISHED)] == ["succeeded", "failed", "succeeded"]


async def test_30_iteration_terminated_fails_the_run() -> None:
    inner = code("inner", "work", {"item": ["it", "item"]}, {"output": "string"})
    events = await run_iteration(
        ["a", "b", "c"], inner, {"work": FAIL_SECOND}, error_handle_mode="terminated"
    )
    failed = of(events, ev.ITERATION_FAILED)[0]
    assert failed.data["error"] == "ValueError: item 1"
    assert failed.data["outputs"] == {"output": ["r0"]}
    assert of(events, ev.NODE_FAILED, "it")[0].data["error"] == "ValueError: item 1"
    assert events[-1].kind == ev.RUN_FAILED
    assert [e.data["index"] for e in of(events, ev.ITERATION_NEXT)] == [0, 1]


async def test_30_list_results_are_flattened() -> None:
    inner = code("inner", "work", {"item": ["it", "item"]}, {"output": "array[string]"})
    work = lambda i: {"output": [i["item"], i["item"]]}  # noqa: E731
    events = await run_iteration(["a", "b"], inner, {"work": work})
    assert events[-1].data["outputs"] == {"out": ["a", "a", "b", "b"]}
    events = await run_iteration(["a", "b"], inner, {"work": work}, flatten_output=False)
    assert events[-1].data["outputs"] == {"out": [["a", "a"], ["b", "b"]]}


async def test_31_empty_iteration() -> None:
    inner = template("inner", "x", {})
    events = await run_iteration([], inner)
    assert events[-1].data["outputs"] == {"out": []}
    assert [e.kind for e in events if e.node and e.node.node_id == "it"] == [
        ev.NODE_STARTED,
        ev.ITERATION_STARTED,
        ev.ITERATION_SUCCEEDED,
        ev.NODE_SUCCEEDED,
    ]
    assert not [e for e in events if e.container_id == "it"]


# -- loops ---------------------------------------------------------------------------------------


def loop_graph(*, count: int = 10, breaks: list[dict[str, Any]] | None = None, loop_end: bool = False) -> str:
    inc = node(
        "inc",
        "assigner",
        version="2",
        items=[
            {
                "variable_selector": ["loop", "counter"],
                "operation": "+=",
                "input_type": "constant",
                "value": 1,
            }
        ],
    )
    nodes = [
        start("start"),
        node(
            "loop",
            "loop",
            start_node_id="loop_start",
            loop_count=count,
            break_conditions=breaks or [],
            logical_operator="and",
            loop_variables=[{"label": "counter", "var_type": "number", "value_type": "constant", "value": 0}],
        ),
        inside("loop", node("loop_start", "loop-start")),
        inside("loop", inc),
        end("end", counter=["loop", "counter"], rounds=["loop", "loop_round"]),
    ]
    edges = [edge("start", "loop"), edge("loop_start", "inc"), edge("loop", "end")]
    if loop_end:
        nodes.append(inside("loop", node("stop", "loop-end")))
        edges.append(edge("inc", "stop"))
    return document(nodes, edges)


async def test_32_loop_break() -> None:
    events = await run(loop_graph(breaks=[{**cond(["loop", "counter"], "≥", "3")}]), make_ports())
    assert events[-1].data["outputs"] == {"counter": 3, "rounds": 3}
    assert [e.data["index"] for e in of(events, ev.LOOP_NEXT)] == [1, 2]
    done = of(events, ev.LOOP_SUCCEEDED)[0]
    assert done.data["steps"] == 10
    assert done.data["metadata"]["completed_reason"] == "loop_break"
    assert done.data["outputs"] == {"counter": 3, "loop_round": 3}
    assert done.data["metadata"]["loop_variable_map"] == {
        "0": {"counter": 1},
        "1": {"counter": 2},
        "2": {"counter": 3},
    }
    started = of(events, ev.LOOP_STARTED)[0]
    assert started.data["inputs"] == {"loop_count": 10, "counter": 0}
    assert started.data["metadata"] == {"loop_length": 10}
    result = of(events, ev.NODE_SUCCEEDED, "loop")[0].data["result"]
    assert "completed_reason" not in result["metadata"]
    inc = of(events, ev.NODE_SUCCEEDED, "inc")
    assert [e.data["result"]["metadata"] for e in inc] == [
        {"loop_id": "loop", "loop_index": i} for i in range(3)
    ]
    assert [u.data["value"] for u in of(events, ev.NODE_VARIABLE_UPDATED)] == [1, 2, 3]


async def test_33_loop_break_before_round_zero() -> None:
    events = await run(loop_graph(breaks=[cond(["loop", "counter"], "=", "0")]), make_ports())
    done = of(events, ev.LOOP_SUCCEEDED)[0]
    assert done.data["steps"] == 0
    assert done.data["outputs"] == {}
    assert not of(events, ev.NODE_STARTED, "inc")
    assert events[-1].data["outputs"] == {"counter": 0, "rounds": None}


async def test_33_loop_end_stops_after_its_round() -> None:
    events = await run(loop_graph(loop_end=True), make_ports())
    assert events[-1].data["outputs"] == {"counter": 1, "rounds": 1}
    assert of(events, ev.LOOP_SUCCEEDED)[0].data["metadata"]["completed_reason"] == "loop_break"
    assert of(events, ev.NODE_SUCCEEDED, "stop")


async def test_33_loop_without_break_runs_every_round() -> None:
    events = await run(loop_graph(count=4), make_ports())
    done = of(events, ev.LOOP_SUCCEEDED)[0]
    assert done.data["metadata"]["completed_reason"] == "loop_completed"
    assert done.data["steps"] == 4
    assert events[-1].data["outputs"] == {"counter": 4, "rounds": 4}
    assert [e.data["index"] for e in of(events, ev.LOOP_NEXT)] == [1, 2, 3]

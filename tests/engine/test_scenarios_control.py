"""Acceptance scenarios 34–40 and 42 of engine.md §9: limits, stop, pause/resume, human input,
several response nodes, skipped stream sources, determinism of replay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sluice.engine import Engine, EngineSettings, ResumeError, RunInput
from sluice.engine import events as ev
from sluice.engine.ports import FormSubmitted, FormTimedOut
from sluice.engine.testkit import (
    Answer,
    FakeCodeExecutor,
    FakeHumanInput,
    FakePauseGate,
    VirtualClock,
    at_time,
    collect,
    make_ports,
)
from sluice.runtime.dify_events import DifyMapper, RunFacts
from tests.engine.builder import (
    answer,
    brief,
    chain,
    code,
    compile_graph,
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
from tests.engine.test_scenarios import double, main_graph

T0 = VirtualClock().now()


def sse_status(events: list[ev.Event]) -> tuple[str, Any]:
    facts = RunFacts("run-1", "task-1", "wf-1", datetime(2025, 1, 1, tzinfo=UTC), {"id": "u"})
    mapped = DifyMapper(facts).map(events[-1])
    assert mapped is not None
    return mapped.payload["data"]["status"], mapped.payload["data"]["error"]


async def test_34_step_limit_aborts_after_the_node_that_exceeds_it() -> None:
    clock = VirtualClock()
    ports = make_ports(clock, code=FakeCodeExecutor(clock, {"double": double}))
    events = await run(main_graph(), ports, {"name": "Ada", "n": 7}, EngineSettings(max_steps=2))
    names = brief(events)
    assert names[-2:] == ["node_succeeded:tt", "run_aborted"]
    final = events[-1]
    assert final.data["reason"] == "Aborted: Maximum execution steps exceeded: 3 > 2"
    assert final.data["cause"] == "limit"
    assert final.data["outputs"] == {}
    assert "node_started:ifelse" not in names
    assert sse_status(events) == ("failed", "Aborted: Maximum execution steps exceeded: 3 > 2")


async def test_35_time_limit_watchdog_interrupts_a_long_node() -> None:
    clock = VirtualClock()
    executor = FakeCodeExecutor(clock, {"long": Answer({"x": "late"}, delay=5)})
    nodes = [start("start"), code("long", "long", {}, {"x": "string"}), end("end", x=["long", "x"])]
    events = await run(
        document(nodes, chain("start", "long", "end")),
        make_ports(clock, code=executor),
        settings=EngineSettings(max_time_s=1),
    )
    final = events[-1]
    assert final.kind == ev.RUN_ABORTED
    assert final.at - T0 == timedelta(seconds=1)
    assert final.data["reason"] == "Aborted: Maximum execution time exceeded: 1.00s > 1s"
    assert executor.cancelled == ["long"]
    assert not of(events, ev.NODE_SUCCEEDED, "long")


def slow_graph() -> str:
    nodes = [
        start("start"),
        code("slow", "slow", {}, {"v": "string"}),
        template("after", "after {{ v }}", {"v": ["slow", "v"]}),
        end("end", r=["after", "output"]),
    ]
    return document(nodes, chain("start", "slow", "after", "end"))


async def test_36_stop_cancels_the_running_node() -> None:
    clock = VirtualClock()
    executor = FakeCodeExecutor(clock, {"slow": Answer({"v": "x"}, delay=0.6)})
    engine = Engine(compile_graph(slow_graph()), make_ports(clock, code=executor))
    stopper = at_time(clock, 0.3, engine.abort)
    events = await collect(engine.run(RunInput(run_id="run-1", inputs={})))
    await stopper
    assert events[-1].kind == ev.RUN_ABORTED
    assert events[-1].data["reason"] == "Aborted: User requested abort"
    assert events[-1].data["cause"] == "user"
    assert events[-1].at - T0 == timedelta(seconds=0.3)
    assert not of(events, ev.NODE_SUCCEEDED, "slow")
    assert not of(events, ev.NODE_STARTED, "after")
    assert executor.cancelled == ["slow"]
    assert sse_status(events) == ("stopped", "Stopped by user")


async def paused_run(ports: Any, graph: str) -> tuple[Engine, list[ev.Event]]:
    clock = ports.clock
    engine = Engine(compile_graph(graph), ports)
    pauser = at_time(clock, 0.3, lambda: engine.pause("maintenance"))
    events = await collect(engine.run(RunInput(run_id="run-1", inputs={})))
    await pauser
    return engine, events


async def test_37_pause_and_resume() -> None:
    clock = VirtualClock()
    executor = FakeCodeExecutor(clock, {"slow": Answer({"v": "x"}, delay=0.6)})
    gate = FakePauseGate()
    engine, events = await paused_run(make_ports(clock, code=executor, pause_gate=gate), slow_graph())
    assert brief(events)[-4:] == ["pause_requested", "edge_taken:edge_1", "node_succeeded:slow", "run_paused"]
    assert of(events, ev.PAUSE_REQUESTED)[0].at - T0 == timedelta(seconds=0.3)
    assert not of(events, ev.NODE_STARTED, "after")
    paused = events[-1]
    assert paused.kind == ev.RUN_PAUSED
    assert paused.data["reasons"] == [{"TYPE": "scheduled_pause", "message": "maintenance"}]
    assert paused.data["deferred"] == [{"node_id": "after", "frame_id": "root", "execution_id": None}]
    assert paused.at - T0 == timedelta(seconds=0.6)
    assert len(gate.commits) == 1
    recorded = [e.to_dict() for e in events]
    snapshot = await engine.replay_snapshot(RunInput(run_id="run-1", inputs={}), recorded)
    assert snapshot == gate.commits[0][0]
    resumed = await collect(engine.resume(RunInput(run_id="run-1", inputs={}), recorded))
    assert brief(resumed)[:2] == ["run_started", "node_started:after"]
    assert resumed[0].data["reason"] == "resumption"
    assert resumed[0].seq == events[-1].seq + 1
    assert resumed[0].segment == 1
    assert resumed[-1].kind == ev.RUN_SUCCEEDED
    assert resumed[-1].data["outputs"] == {"r": "after x"}
    assert resumed[-1].data["total_steps"] == 4
    assert [c.code for c in executor.calls] == ["slow"]


def human_graph() -> str:
    hi = node(
        "hi",
        "human-input",
        form_content="Approve {{#start.name#}}? {{#$output.comment#}}",
        inputs=[{"type": "paragraph", "output_variable_name": "comment"}],
        user_actions=[{"id": "approve", "title": "Approve"}, {"id": "reject", "title": "Reject"}],
        delivery_methods=[{"type": "webapp", "enabled": True}],
    )
    nodes = [
        start("start", "name"),
        hi,
        template("A", "approved: {{ c }}", {"c": ["hi", "comment"]}),
        template("B", "rejected", {}),
        template("C", "timed out", {}),
        node("agg", "variable-aggregator", variables=[["A", "output"], ["B", "output"], ["C", "output"]]),
        end("end", r=["agg", "output"], action=["hi", "__action_id"]),
    ]
    edges = [
        edge("start", "hi"),
        edge("hi", "A", "approve"),
        edge("hi", "B", "reject"),
        edge("hi", "C", "__timeout"),
        edge("A", "agg"),
        edge("B", "agg"),
        edge("C", "agg"),
        edge("agg", "end"),
    ]
    return document(nodes, edges)


async def test_38_human_input_pauses_and_resumes_on_the_chosen_action() -> None:
    service = FakeHumanInput()
    ports = make_ports(human_input=service)
    engine = Engine(compile_graph(human_graph()), ports)
    run_input = RunInput(run_id="run-1", inputs={"name": "Ada"})
    first = await collect(engine.run(run_input))
    assert brief(first)[-2:] == ["node_pause_requested:hi", "run_paused"]
    hi_id = of(first, ev.NODE_STARTED, "hi")[0].node.execution_id  # type: ignore[union-attr]
    reason = {
        "TYPE": "human_input_required",
        "form_id": f"form-{hi_id[-4:]}",
        "node_id": "hi",
        "node_title": "hi",
    }
    assert of(first, ev.NODE_PAUSE_REQUESTED)[0].data == {"reason": reason}
    assert first[-1].data["reasons"] == [reason]
    assert first[-1].data["deferred"] == [{"node_id": "hi", "frame_id": "root", "execution_id": hi_id}]
    assert service.requests[0].rendered_content == "Approve Ada? {{#$output.comment#}}"

    service.answers["hi"] = FormSubmitted("form", "approve", "Approve", {"comment": "fine", "junk": 1})
    second = await collect(engine.resume(run_input, [e.to_dict() for e in first]))
    names = brief(second)
    assert names[:5] == [
        "run_started",
        "node_started:hi",
        "human_input_form_filled:hi",
        "edge_skipped:edge_2",
        "edge_skipped:edge_5",
    ]
    assert of(second, ev.NODE_STARTED, "hi")[0].node.execution_id == hi_id  # type: ignore[union-attr]
    filled = of(second, ev.HUMAN_INPUT_FORM_FILLED)[0].data
    assert filled["rendered_content"] == "Approve Ada? fine"
    assert filled["action_text"] == "Approve"
    result = of(second, ev.NODE_SUCCEEDED, "hi")[0].data["result"]
    assert result["edge_source_handle"] == "approve"
    assert result["outputs"] == {
        "comment": "fine",
        "__action_id": "approve",
        "__action_value": "Approve",
        "__rendered_content": "Approve Ada? fine",
    }
    assert not of(second, ev.NODE_STARTED, "B") and not of(second, ev.NODE_STARTED, "C")
    assert second[-1].data["outputs"] == {"r": "approved: fine", "action": "approve"}
    assert [r.execution_id for r in service.requests] == [hi_id, hi_id]


async def test_38_human_input_deadline_leaves_by_timeout() -> None:
    service = FakeHumanInput({"hi": FormTimedOut("form", 1767312000)})
    events = await run(human_graph(), make_ports(human_input=service), {"name": "Ada"})
    assert of(events, ev.HUMAN_INPUT_FORM_TIMEOUT)[0].data == {"expiration_time": 1767312000}
    result = of(events, ev.NODE_SUCCEEDED, "hi")[0].data["result"]
    assert result["edge_source_handle"] == "__timeout"
    assert result["outputs"]["__rendered_content"] == "Approve Ada? {{#$output.comment#}}"
    assert events[-1].data["outputs"] == {"r": "timed out", "action": ""}


async def test_pause_gate_releases_answered_forms_in_the_same_segment() -> None:
    service = FakeHumanInput()
    gate = FakePauseGate()
    engine = Engine(compile_graph(human_graph()), make_ports(human_input=service, pause_gate=gate))

    async def answered_meanwhile(snapshot: Any, reasons: list[dict[str, Any]]) -> list[str]:
        gate.commits.append((dict(snapshot), reasons))
        service.answers["hi"] = FormSubmitted("form", "reject", "Reject", {})
        return [service.requests[0].execution_id]

    gate.commit = answered_meanwhile  # type: ignore[method-assign]
    events = await collect(engine.run(RunInput(run_id="run-1", inputs={"name": "Ada"})))
    assert ev.PAUSE_RELEASED in [e.kind for e in events]
    assert events[-1].kind == ev.RUN_SUCCEEDED
    assert events[-1].data["outputs"] == {"r": "rejected", "action": "reject"}
    assert len(of(events, ev.NODE_STARTED, "hi")) == 2
    assert gate.commits[0][1] == [of(events, ev.NODE_PAUSE_REQUESTED)[0].data["reason"]]


async def test_39_several_response_nodes() -> None:
    clock = VirtualClock()
    executor = FakeCodeExecutor(
        clock, {"fast": Answer({"v": "fast"}, 0.1), "late": Answer({"v": "late"}, 0.2)}
    )
    nodes = [
        start("start"),
        code("a", "late", {}, {"v": "string"}),
        code("b", "fast", {}, {"v": "string"}),
        end("end_a", r=["a", "v"]),
        end("end_b", r=["b", "v"]),
    ]
    edges = [edge("start", "a"), edge("start", "b"), edge("a", "end_a"), edge("b", "end_b")]
    events = await run(document(nodes, edges), make_ports(clock, code=executor))
    assert events[-1].data["outputs"] == {"r": "late"}
    chat = [
        start("start"),
        answer("one", "Hello "),
        answer("two", "world"),
    ]
    events = await run(document(chat, chain("start", "one", "two"), mode="advanced-chat"), make_ports())
    assert events[-1].data["outputs"]["answer"] == "Hello world"


async def test_40_skipped_stream_source() -> None:
    nodes = [
        start("start"),
        ifelse("if", ("case", [cond(["sys", "user_id"], "not empty")])),
        template("x", "X", {}),
        template("y", "Y", {}),
        end("end", a=["x", "output"], b=["y", "output"]),
    ]
    edges = [
        edge("start", "if"),
        edge("if", "x", "case"),
        edge("if", "y", "false"),
        edge("x", "end"),
        edge("y", "end"),
    ]
    events = await run(document(nodes, edges), make_ports(), system={"user_id": "u"})
    chunks = [(c.data["text"], c.data["is_final"]) for c in of(events, ev.TEXT_CHUNK)]
    assert chunks == [("X", False), ("\n", False)]
    assert events[-1].data["outputs"] == {"a": "X", "b": None}


async def test_42_replaying_a_paused_log_calls_no_port() -> None:
    clock = VirtualClock()
    executor = FakeCodeExecutor(clock, {"slow": Answer({"v": "x"}, delay=0.6)})
    gate = FakePauseGate()
    ports = make_ports(clock, code=executor, pause_gate=gate)
    engine, events = await paused_run(ports, slow_graph())
    calls, ids = len(executor.calls), list(ports.ids.kinds)  # type: ignore[attr-defined]
    silent = make_ports(VirtualClock(), code=None)
    replayer = Engine(engine.graph, silent)
    snapshot = await replayer.replay_snapshot(
        RunInput(run_id="run-1", inputs={}), [e.to_dict() for e in events]
    )
    assert snapshot == gate.commits[0][0]
    assert silent.ids.kinds == []  # type: ignore[attr-defined]
    assert len(executor.calls) == calls and ports.ids.kinds == ids  # type: ignore[attr-defined]


async def test_resume_refuses_another_graph_or_a_finished_run() -> None:
    clock = VirtualClock()
    ports = make_ports(clock, code=FakeCodeExecutor(clock, {"double": double}))
    events = [e.to_dict() for e in await run(main_graph(), ports, {"name": "Ada", "n": 7})]
    engine = Engine(compile_graph(slow_graph()), make_ports())
    try:
        await collect(engine.resume(RunInput(run_id="run-1", inputs={}), events[:-1]))
    except ResumeError as exc:
        assert exc.code == "resume.graph_mismatch"
    else:  # pragma: no cover
        raise AssertionError("resumed another graph")
    same = Engine(compile_graph(main_graph()), ports)
    try:
        await collect(same.resume(RunInput(run_id="run-1", inputs={}), events))
    except ResumeError as exc:
        assert exc.code == "resume.run_finished"
    else:  # pragma: no cover
        raise AssertionError("resumed a finished run")


async def test_resume_after_a_crash_reruns_what_had_not_finished() -> None:
    clock = VirtualClock()
    executor = FakeCodeExecutor(clock, {"double": double})
    ports = make_ports(clock, code=executor)
    full = await run(main_graph(), ports, {"name": "Ada", "n": 7})
    cut = [e.to_dict() for e in full[: brief(full).index("node_started:tt") + 1]]
    engine = Engine(compile_graph(main_graph()), ports)
    rest = await collect(engine.resume(RunInput(run_id="run-1", inputs={"name": "Ada", "n": 7}), cut))
    assert brief(rest)[:2] == ["run_started", "node_started:tt"]
    assert rest[1].node.execution_id == full[brief(full).index("node_started:tt")].node.execution_id  # type: ignore[union-attr]
    assert rest[-1].data["outputs"] == full[-1].data["outputs"]
    assert len(executor.calls) == 1  # code finished before the crash: not run again


async def test_update_variables_command() -> None:
    clock = VirtualClock()
    executor = FakeCodeExecutor(clock, {"slow": Answer({"v": "x"}, delay=0.6)})
    nodes = [
        start("start"),
        code("slow", "slow", {}, {"v": "string"}),
        answer("ans", "{{#conversation.topic#}}"),
    ]
    conv = [
        {
            "id": "t",
            "name": "topic",
            "value_type": "string",
            "value": "old",
            "selector": ["conversation", "topic"],
        }
    ]
    graph = compile_graph(
        document(nodes, chain("start", "slow", "ans"), mode="advanced-chat", conversation=conv)
    )
    engine = Engine(graph, make_ports(clock, code=executor))
    updater = at_time(
        clock,
        0.3,
        lambda: engine.update_variables(
            [{"selector": ["conversation", "topic"], "value_type": "string", "value": "new"}]
        ),
    )
    events = await collect(engine.run(RunInput(run_id="run-1", inputs={})))
    await updater
    assert of(events, ev.VARIABLES_UPDATED)[0].data["updates"] == [
        {"selector": ["conversation", "topic"], "value_type": "string", "value": "new"}
    ]
    assert events[-1].data["outputs"]["answer"] == "new"


async def test_commands_arrive_through_the_command_source_port() -> None:
    clock = VirtualClock()
    executor = FakeCodeExecutor(clock, {"slow": Answer({"v": "x"}, delay=0.6)})

    class Source:
        def __aiter__(self) -> Any:
            return self.gen()

        async def gen(self) -> Any:
            await clock.sleep(0.2)
            yield {"type": "abort", "reason": "from the bus"}

    ports = make_ports(clock, code=executor, commands=Source())
    events = await run(slow_graph(), ports)
    assert events[-1].data["reason"] == "Aborted: from the bus"
    assert events[-1].at - T0 == timedelta(seconds=0.2)


async def test_human_input_inside_an_iteration_asks_once_per_item() -> None:
    hi = node(
        "hi",
        "human-input",
        form_content="Item {{#it.item#}}?",
        inputs=[],
        user_actions=[{"id": "ok", "title": "OK"}],
        delivery_methods=[{"type": "webapp", "enabled": True}],
    )
    hi["data"]["container_id"] = "it"
    mark = template("mark", "{{ i }}!", {"i": ["it", "item"]})
    mark["data"]["container_id"] = "it"
    nodes = [
        start("start", items="paragraph"),
        node(
            "it",
            "iteration",
            start_node_id="is",
            iterator_selector=["start", "items"],
            output_selector=["mark", "output"],
        ),
        {"id": "is", "data": {"type": "iteration-start", "title": "", "container_id": "it"}},
        hi,
        mark,
        end("end", out=["it", "output"]),
    ]
    edges = [edge("start", "it"), edge("is", "hi"), edge("hi", "mark", "ok"), edge("it", "end")]
    service = FakeHumanInput()
    engine = Engine(compile_graph(document(nodes, edges)), make_ports(human_input=service))
    run_input = RunInput(run_id="run-1", inputs={"items": ["x", "y"]})
    first = await collect(engine.run(run_input))
    assert first[-1].kind == ev.RUN_PAUSED
    assert [d["frame_id"].split(":", 1)[1] for d in first[-1].data["deferred"]] == ["iteration:0"]
    assert service.requests[0].rendered_content == "Item x?"
    service.answers["hi"] = FormSubmitted("form", "ok", "OK", {})
    rest = await collect(engine.resume(run_input, [e.to_dict() for e in first]))
    assert rest[-1].kind == ev.RUN_SUCCEEDED
    assert rest[-1].data["outputs"] == {"out": ["x!", "y!"]}
    executions = [r.execution_id for r in service.requests]
    assert executions[0] == executions[1] != executions[2]  # re-run keeps its id; item 1 gets its own form

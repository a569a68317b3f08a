"""Resume by replay (§5.12) over every reference workflow: pausing at any time and resuming, or
crashing after any event and resuming from the recorded node results, ends like an
uninterrupted run, without running a finished node twice."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from sluice.engine import Engine, RunInput
from sluice.engine import events as ev
from sluice.engine.testkit import FakeCodeExecutor, FakePauseGate, SeqIds, VirtualClock, at_time, collect
from tests.engine.golden_cases import NAMES, Case, load_case

PAUSE_TIMES = [0.0, 0.05, 0.1, 0.15, 0.25, 0.35, 0.55]
FINISHING = [n for n in NAMES if n not in ("human_input_pause", "step_limit")]


def outcomes(events: list[ev.Event]) -> Counter[tuple[str, str, str]]:
    """Node outcomes by node, frame position (``frame_id`` without the container execution id)
    and status; it ignores ids and timing."""
    out: Counter[tuple[str, str, str]] = Counter()
    for e in events:
        if e.kind in ev.NODE_TERMINAL and e.node is not None:
            where = ":".join(e.frame_id.split(":")[1:]) or "root"
            out[(e.node.node_id, where, e.data["result"]["status"])] += 1
    return out


async def baseline(case: Case) -> list[ev.Event]:
    return await collect(case.engine(case.ports()).run(case.run_input()))


async def paused_then_resumed(case: Case, at: float) -> tuple[list[list[ev.Event]], FakePauseGate, Engine]:
    clock = VirtualClock()
    gate = FakePauseGate()
    ports = case.ports(clock, gate)
    engine = case.engine(ports)
    pauser = at_time(clock, at, lambda: engine.pause("test"))
    segments = [await collect(engine.run(case.run_input()))]
    pauser.cancel()
    recorded = [e.to_dict() for e in segments[0]]
    while segments[-1][-1].kind == ev.RUN_PAUSED and len(segments) < 5:
        snapshot = await Engine(case.graph, case.ports(VirtualClock()), case.settings).replay_snapshot(
            case.run_input(), recorded
        )
        assert snapshot == gate.commits[-1][0]
        if segments[-1][-1].data["reasons"][0]["TYPE"] != "scheduled_pause":
            break
        segments.append(await collect(engine.resume(case.run_input(), recorded)))
        recorded += [e.to_dict() for e in segments[-1]]
    return segments, gate, engine


@pytest.mark.parametrize("name", NAMES)
async def test_pause_at_any_time_then_resume_ends_like_an_uninterrupted_run(name: str) -> None:
    case = load_case(name)
    expected = await baseline(case)
    for at in PAUSE_TIMES:
        segments, _, engine = await paused_then_resumed(case, at)
        final = segments[-1][-1]
        everything = [e for segment in segments for e in segment]
        seqs = [e.seq for e in everything]
        assert seqs == list(range(1, len(seqs) + 1)), f"{name} @ {at}: seq gaps"
        if final.kind == ev.RUN_PAUSED:
            assert expected[-1].kind == ev.RUN_PAUSED
            continue
        assert final.kind == expected[-1].kind, f"{name} @ {at}"
        assert final.data["outputs"] == expected[-1].data["outputs"], f"{name} @ {at}"
        assert outcomes(everything) == outcomes(expected), f"{name} @ {at}"
        executor = engine.ports.code
        assert isinstance(executor, FakeCodeExecutor)
        started = sum(
            1
            for e in everything
            if e.kind in (ev.NODE_STARTED, ev.NODE_RETRY) and e.node and e.node.node_type == "code"
        )
        assert len(executor.calls) == started, f"{name} @ {at}: a code node ran twice"


def results_before(events: list[ev.Event], cut: int, containers: bool = True) -> list[dict[str, Any]]:
    """Node results recorded before ``cut``; the runtime keeps no rows for container nodes
    (``containers=False``), whose state the replay rebuilds from their children."""
    return [
        e.to_dict()
        for e in events[:cut]
        if e.kind in ev.NODE_TERMINAL
        and (containers or e.node is None or e.node.node_type not in ("iteration", "loop"))
    ]


@pytest.mark.parametrize("name", FINISHING)
async def test_crash_after_any_event_resumes_from_the_recorded_results(name: str) -> None:
    case = load_case(name)
    expected = await baseline(case)
    variants = (
        [True, False] if any(n.type in ("iteration", "loop") for n in case.graph.nodes.values()) else [True]
    )
    for cut, containers in ((c, v) for c in range(1, len(expected)) for v in variants):
        recorded = results_before(expected, cut, containers)
        ports = case.ports()
        ports.ids = SeqIds(start=1000)  # ids of a later try never repeat the recorded ones
        rest = await collect(case.engine(ports).resume(case.run_input(), recorded))
        final = rest[-1]
        assert final.kind == expected[-1].kind, f"{name} cut at {cut}"
        assert final.data["outputs"] == expected[-1].data["outputs"], f"{name} cut at {cut}"
        done = Counter((r["node_id"], r["frame_id"]) for r in recorded)
        rerun = Counter(
            (e.node.node_id, e.frame_id) for e in rest if e.kind in ev.NODE_TERMINAL and e.node is not None
        )
        assert not (set(done) & set(rerun)), f"{name} cut at {cut}: a recorded node ran again"
        assert rest[0].kind == ev.RUN_STARTED and rest[0].data["reason"] == "resumption"


async def test_human_input_pause_resumes_from_node_results_with_the_same_execution() -> None:
    case = load_case("human_input_pause")
    paused = await baseline(case)
    pause = [e.to_dict() for e in paused if e.kind in (*ev.NODE_TERMINAL, ev.NODE_PAUSE_REQUESTED)]
    answered = load_case("human_input_approve")
    engine = Engine(case.graph, answered.ports(), case.settings)
    rest = await collect(engine.resume(RunInput(run_id="run-1", inputs={"name": "Ada"}), pause))
    hi = [e for e in rest if e.kind == ev.NODE_STARTED and e.node and e.node.node_id == "hi"]
    assert hi[0].node.execution_id == pause[-1]["execution_id"]  # type: ignore[union-attr]
    assert rest[-1].data["outputs"] == {"action": "approve", "r": "approved: fine"}

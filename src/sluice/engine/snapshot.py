"""The state of a segment as plain JSON (§5.12): what a pause commits, and what replaying the
recorded log reaches. Only deterministic state goes in (no task handles, tokens or clock
readings), so a live snapshot and a replayed one compare equal."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sluice.engine.values import to_jsonable

if TYPE_CHECKING:
    from sluice.engine.containers import ContainerRun
    from sluice.engine.frames import Frame
    from sluice.engine.runstate import RunState


def build_snapshot(run: RunState) -> dict[str, Any]:
    replay = run.replay
    if replay is not None:
        record = replay.peek()
        seq = int(record["seq"]) if record else int(replay.events[-1]["seq"]) + 1
    else:
        seq = run.seq
    frames = sorted(run.frames.values(), key=lambda f: f.frame_id)
    return {
        "version": 1,
        "run_id": run.run_id,
        "graph_fingerprint": run.graph.fingerprint,
        "next_seq": seq,
        "counters": {
            "steps": run.steps,
            "total_steps": run.root_steps,
            "index": run.index,
            "exceptions_count": run.exceptions,
            "total_tokens": run.total_tokens,
        },
        "pausing": run.pausing,
        "reasons": to_jsonable(run.pause_reasons),
        "deferred": [
            {"frame_id": frame.frame_id, "node_id": node_id, "container": is_container}
            for frame, node_id, is_container in run.deferred_order
        ],
        "frames": [_frame(frame) for frame in frames],
        "containers": [_container(c) for frame in frames for c in frame.containers.values()],
        "streams": run.streams.state(),
    }


def _frame(frame: Frame) -> dict[str, Any]:
    pool = {ns: dict(frame.pool.namespace(ns)) for ns in sorted(frame.pool.namespaces()) if ns != "env"}
    return {
        "frame_id": frame.frame_id,
        "container_id": frame.container_id,
        "container_type": frame.container_type,
        "index": frame.index,
        "pool": to_jsonable(pool),
        "node_state": dict(sorted(frame.node_state.items())),
        "edge_state": dict(sorted(frame.edge_state.items())),
        "predecessor": dict(sorted(frame.predecessor.items())),
        "executions": {node_id: ref.execution_id for node_id, ref in sorted(frame.refs.items())},
        "retries": dict(sorted(frame.retries.items())),
        "running": sorted(frame.running),
        "deferred": list(frame.deferred),
        "outputs": to_jsonable(frame.outputs),
        "loop_end": frame.loop_end,
    }


def _container(run: ContainerRun) -> dict[str, Any]:
    return {
        "frame_id": run.frame.frame_id,
        "node_id": run.node_id,
        "kind": run.kind,
        "execution_id": run.ref.execution_id,
        "children": sorted(run.children),
        "scheduled": run.scheduled,
        "completed": run.completed,
        "results": {str(k): to_jsonable(v) for k, v in sorted(run.results.items())},
        "errors": list(run.errors),
        "outputs": to_jsonable(run.outputs),
        "variable_map": to_jsonable(run.variable_map),
        "durations": dict(run.durations),
        "waiting": run.waiting,
        "reached_break": run.reached_break,
    }

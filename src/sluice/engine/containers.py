"""Iteration and loop containers (§4.9, §4.10, §5.5): child frames driven by the apply loop.

A container node stays *running* in its frame while its items or rounds run in child frames;
each child frame ends with ``frame_finished``, after which the container starts the next item
or round, or completes with ``*_succeeded|failed`` followed by its own result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sluice.engine import events as ev
from sluice.engine.apply import Applier
from sluice.engine.conditions import ConditionError, VariableNotFound, evaluate_case
from sluice.engine.frames import Frame
from sluice.engine.nodes.base import FAILED, SUCCEEDED, NodeError, NodeResult
from sluice.engine.nodes.containers import IterationNode, LoopNode
from sluice.engine.outputs import merge_frame_outputs
from sluice.engine.pool import VariablePool
from sluice.engine.template import resolver
from sluice.engine.values import ABSENT, to_jsonable

USAGE = {"total_tokens": 0, "total_price": 0, "currency": "USD"}


@dataclass(slots=True)
class ContainerRun:
    kind: str  # iteration | loop
    frame: Frame
    node_id: str
    ref: ev.NodeRef
    token: int
    start_node_id: str
    inputs: dict[str, Any]
    children: dict[int, Frame] = field(default_factory=dict)
    durations: dict[str, float] = field(default_factory=dict)
    waiting: bool = False
    """The next item or round is held by a pause."""
    # iteration
    items: list[Any] = field(default_factory=list)
    parallel: int = 1
    scheduled: int = 0
    completed: int = 0
    results: dict[int, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    # loop
    loop_count: int = 0
    selectors: dict[str, tuple[str, str]] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    variable_map: dict[str, dict[str, Any]] = field(default_factory=dict)
    reached_break: bool = False


class ContainerDriver(Applier):
    def start_container(self, frame: Frame, node_id: str, token: int) -> None:
        runner = self.graph.runners[node_id]
        ref = frame.refs[node_id]
        try:
            if isinstance(runner, IterationNode):
                self._start_iteration(frame, node_id, token, runner, ref)
            elif isinstance(runner, LoopNode):
                self._start_loop(frame, node_id, token, runner, ref)
            else:  # pragma: no cover - the loader only makes these two container types
                raise NodeError(f"Node {node_id} is not a container")
        except NodeError as exc:
            frame.containers.pop(node_id, None)
            self.apply(frame, node_id, NodeResult.failure(exc.message, exc.error_type))

    def _new_child(self, run: ContainerRun, index: int, pool: VariablePool) -> Frame:
        parent = run.frame
        at = self.now()
        child = Frame(
            f"{run.ref.execution_id}:{run.kind}:{index}",
            pool,
            run.start_node_id,
            parent=parent,
            container=run,
            container_id=run.node_id,
            container_type=run.kind,
            index=index,
            started_at=at,
        )
        run.children[index] = child
        self.frames[child.frame_id] = child
        return child

    def child_frame_finished(self, child: Frame) -> None:
        run = child.container
        assert run is not None
        run.children.pop(child.index or 0, None)
        if run.frame.finished or self.terminal is not None:
            return
        at = self.now()
        index = child.index or 0
        run.durations[str(index)] = duration(child.started_at, at)
        if run.kind == "iteration":
            self._iteration_item_done(run, child, at)
        else:
            self._loop_round_done(run, child, at)

    def resume_container(self, frame: Frame, node_id: str) -> None:
        """A pause lifted: start the item or round it held."""
        run = frame.containers.get(node_id)
        if run is None or not run.waiting or frame.finished:
            return
        run.waiting = False
        if run.kind == "iteration":
            self._schedule_items(run)
        else:
            self._next_round(run)

    # -- iteration ------------------------------------------------------------------------------

    def _start_iteration(
        self, frame: Frame, node_id: str, token: int, runner: IterationNode, ref: ev.NodeRef
    ) -> None:
        items = runner.iterator(frame.pool)
        if not items:
            inputs: dict[str, Any] = {"iterator_selector": []}
            self.emit(
                ev.ITERATION_STARTED, {"inputs": inputs, "metadata": {"iteration_length": 0}}, ref, frame
            )
            data = {"inputs": inputs, "outputs": {"output": []}, "metadata": {}, "steps": 0}
            self.emit(ev.ITERATION_SUCCEEDED, data, ref, frame)
            self.apply(frame, node_id, NodeResult(inputs=inputs, outputs={"output": []}))
            return
        parallel = 1
        if runner.is_parallel:
            parallel = max(1, min(runner.parallel_nums, self.settings.iteration_max_parallel))
        run = ContainerRun(
            "iteration",
            frame,
            node_id,
            ref,
            token,
            runner.start_node_id,
            {"iterator_selector": items},
            items=items,
            parallel=parallel,
        )
        frame.containers[node_id] = run
        metadata = {"iteration_length": len(items)}
        self.emit(ev.ITERATION_STARTED, {"inputs": to_jsonable(run.inputs), "metadata": metadata}, ref, frame)
        self._schedule_items(run)

    def _schedule_items(self, run: ContainerRun) -> None:
        if run.errors and self._iteration_mode(run) == "terminated":
            return
        if self.pausing:
            if run.scheduled < len(run.items) and len(run.children) < run.parallel and not run.waiting:
                run.waiting = True
                self.deferred_order.append((run.frame, run.node_id, True))
            return
        indexes = list(
            range(run.scheduled, min(len(run.items), run.scheduled + run.parallel - len(run.children)))
        )
        for index in indexes:
            self.emit(ev.ITERATION_NEXT, {"index": index}, run.ref, run.frame)
        for index in indexes:
            pool = run.frame.pool.child_copy()
            pool.set(run.node_id, "item", run.items[index])
            pool.set(run.node_id, "index", index)
            child = self._new_child(run, index, pool)
            run.scheduled = index + 1
            self.enqueue(child, run.start_node_id)

    def _iteration_mode(self, run: ContainerRun) -> str:
        runner = self.graph.runners[run.node_id]
        assert isinstance(runner, IterationNode)
        return runner.error_handle_mode

    def _iteration_item_done(self, run: ContainerRun, child: Frame, at: datetime) -> None:
        runner = self.graph.runners[run.node_id]
        assert isinstance(runner, IterationNode)
        index = child.index or 0
        run.completed += 1
        if child.error is None:
            value = child.pool.get(runner.output_selector) if runner.output_selector else ABSENT
            output = None if value is ABSENT else value
            run.results[index] = output
            if index == len(run.items) - 1:
                merge_frame_outputs(run.frame.outputs, child.outputs)
            self.emit(
                ev.FRAME_FINISHED,
                {"status": SUCCEEDED, "index": index, "output": to_jsonable(output)},
                None,
                child,
                at,
            )
        else:
            if runner.error_handle_mode == "continue-on-error":
                run.results[index] = None
            elif runner.error_handle_mode == "terminated":
                run.errors.append(child.error)
            self.emit(
                ev.FRAME_FINISHED, {"status": FAILED, "index": index, "error": child.error}, None, child, at
            )
        if run.errors and runner.error_handle_mode == "terminated":
            if not run.children:
                self._complete_iteration(run, FAILED, run.errors[0])
            return
        if run.completed >= len(run.items):
            self._complete_iteration(run, SUCCEEDED, None)
            return
        self._schedule_items(run)

    def _complete_iteration(self, run: ContainerRun, status: str, error: str | None) -> None:
        runner = self.graph.runners[run.node_id]
        assert isinstance(runner, IterationNode)
        ordered = [run.results[i] for i in sorted(run.results)]
        output = flatten(ordered) if runner.flatten_output else ordered
        metadata = {**USAGE, "iteration_duration_map": dict(run.durations)}
        data: dict[str, Any] = {
            "inputs": to_jsonable(run.inputs),
            "outputs": {"output": to_jsonable(output)},
            "metadata": metadata,
            "steps": len(run.items),
        }
        kind = ev.ITERATION_SUCCEEDED
        if status == FAILED:
            kind = ev.ITERATION_FAILED
            data["error"] = error
        self.emit(kind, data, run.ref, run.frame)
        run.frame.containers.pop(run.node_id, None)
        result = NodeResult(
            status=status, inputs=run.inputs, outputs={"output": output}, metadata=metadata, error=error
        )
        self.apply(run.frame, run.node_id, result)

    # -- loop -----------------------------------------------------------------------------------

    def _start_loop(self, frame: Frame, node_id: str, token: int, runner: LoopNode, ref: ev.NodeRef) -> None:
        values = runner.initial_values(frame.pool)
        inputs: dict[str, Any] = {"loop_count": runner.loop_count}
        selectors: dict[str, tuple[str, str]] = {}
        for label, value in values.items():
            frame.pool.set(node_id, label, value)
            selectors[label] = (node_id, label)
            inputs[label] = value
        run = ContainerRun(
            "loop",
            frame,
            node_id,
            ref,
            token,
            runner.start_node_id,
            inputs,
            loop_count=runner.loop_count,
            selectors=selectors,
        )
        frame.containers[node_id] = run
        metadata = {"loop_length": runner.loop_count}
        self.emit(ev.LOOP_STARTED, {"inputs": to_jsonable(inputs), "metadata": metadata}, ref, frame)
        self._begin_round(run)

    def _breaks(self, run: ContainerRun, pool: VariablePool) -> bool:
        runner = self.graph.runners[run.node_id]
        assert isinstance(runner, LoopNode)
        if not runner.break_conditions:
            return False

        def actual(selector: list[str]) -> Any:
            value = pool.get(selector)
            if value is ABSENT:
                raise VariableNotFound(selector)
            return value

        case = {"logical_operator": runner.logical_operator, "conditions": runner.break_conditions}
        return evaluate_case(case, actual, resolver(pool)).result

    def _begin_round(self, run: ContainerRun) -> None:
        """Before a round: the break conditions on the parent pool, errors ignored (Q10)."""
        try:
            broken = self._breaks(run, run.frame.pool)
        except ConditionError:
            broken = False
        if broken:
            run.reached_break = True
            self._complete_loop(run, SUCCEEDED, None, steps=0)
            return
        index = run.completed
        descendants = self.graph.descendants.get(run.node_id, frozenset())
        child = self._new_child(run, index, run.frame.pool.child_copy(drop=descendants))
        self.enqueue(child, run.start_node_id)

    def _next_round(self, run: ContainerRun) -> None:
        if self.pausing:
            run.waiting = True
            self.deferred_order.append((run.frame, run.node_id, True))
            return
        self.emit(ev.LOOP_NEXT, {"index": run.completed}, run.ref, run.frame)
        self._begin_round(run)

    def _loop_round_done(self, run: ContainerRun, child: Frame, at: datetime) -> None:
        index = child.index or 0
        run.completed += 1
        values: dict[str, Any] = {}
        error = child.error
        if error is None:
            for label, selector in run.selectors.items():
                value = child.pool.get(selector)
                if value is ABSENT:
                    error = f"loop variable {label} is missing"
                    break
                values[label] = value
        if error is None:
            run.variable_map[str(index)] = values
            merge_frame_outputs(run.frame.outputs, child.outputs)
            run.outputs.update(values)
            run.outputs["loop_round"] = index + 1
            self.emit(ev.FRAME_FINISHED, {"status": SUCCEEDED, "index": index}, None, child, at)
            try:
                if child.loop_end or self._breaks(run, child.pool):
                    run.reached_break = True
            except ConditionError as exc:
                error = exc.message
        else:
            self.emit(ev.FRAME_FINISHED, {"status": FAILED, "index": index, "error": error}, None, child, at)
        if error is not None:
            self._complete_loop(run, FAILED, error, steps=run.loop_count)
        elif run.reached_break or run.completed >= run.loop_count:
            self._complete_loop(run, SUCCEEDED, None, steps=run.loop_count)
        else:
            self._next_round(run)

    def _complete_loop(self, run: ContainerRun, status: str, error: str | None, steps: int) -> None:
        metadata = {
            **USAGE,
            "loop_duration_map": dict(run.durations),
            "loop_variable_map": to_jsonable(run.variable_map),
        }
        reason = "error" if status == FAILED else "loop_break" if run.reached_break else "loop_completed"
        outputs = dict(run.outputs) if status == SUCCEEDED else {}
        data: dict[str, Any] = {
            "inputs": to_jsonable(run.inputs),
            "outputs": to_jsonable(outputs),
            "metadata": {**metadata, "completed_reason": reason},
            "steps": steps,
        }
        kind = ev.LOOP_SUCCEEDED
        if status == FAILED:
            kind = ev.LOOP_FAILED
            data["error"] = error
        self.emit(kind, data, run.ref, run.frame)
        run.frame.containers.pop(run.node_id, None)
        result = NodeResult(status=status, inputs=run.inputs, outputs=outputs, metadata=metadata, error=error)
        self.apply(run.frame, run.node_id, result)


def flatten(results: list[Any]) -> list[Any]:
    """``flatten_output``: when every non-null result is a list, concatenate them (nulls dropped)."""
    present = [r for r in results if r is not None]
    if not present or not all(isinstance(r, list) for r in present):
        return results
    out: list[Any] = []
    for result in present:
        out.extend(result)
    return out


def duration(start: datetime | None, end: datetime) -> float:
    return 0.0 if start is None else round((end - start).total_seconds(), 6)

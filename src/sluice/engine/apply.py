"""Starting nodes and applying their results (§5.1–§5.4, §5.7–§5.10).

Everything here runs inside the apply loop: it alone writes pools, decides edges and emits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from sluice.engine import events as ev
from sluice.engine.frames import DONE, READY, RUNNING, SKIPPED, TAKEN, Frame
from sluice.engine.graph import CONTAINER_TYPES, HIDDEN_TYPES, RESPONSE_TYPES, EdgeSpec
from sluice.engine.nodes.base import EXCEPTION, FAILED, PAUSED, NodeError, NodeResult
from sluice.engine.outputs import merge_outputs, time_limit_reason
from sluice.engine.replay import SparseLog
from sluice.engine.runstate import RunState
from sluice.engine.values import to_jsonable


class Applier(RunState):
    # -- starting -------------------------------------------------------------------------------

    def enqueue(self, frame: Frame, node_id: str) -> None:
        frame.queued += 1
        self.ready.append((frame, node_id))

    def execution_id(self, frame: Frame, node_id: str) -> str | None:
        """A new id; while replaying, the recorded one (``None``: no record, run it live later)."""
        replay = self.replay
        if replay is None:
            return self.ports.ids.new("node_execution")
        if isinstance(replay, SparseLog):
            container = self.graph.nodes[node_id].type in CONTAINER_TYPES
            return replay.execution_for(frame.frame_id, node_id, container)
        record = replay.peek() or {}
        return str(record.get("execution_id") or "")

    def start_node(self, frame: Frame, node_id: str) -> None:
        graph = self.graph
        spec = graph.nodes[node_id]
        runner = graph.runners[node_id]
        frame.node_state[node_id] = RUNNING
        self.tokens += 1
        token = self.tokens
        if frame.retrying and node_id in frame.retrying:
            frame.retrying.discard(node_id)
        elif spec.type not in HIDDEN_TYPES:
            at = self.now()
            ref = frame.refs.get(node_id)
            execution_id = ref.execution_id if ref else self.execution_id(frame, node_id)
            if execution_id is None:
                frame.running[node_id] = token
                self.unrecorded.add((frame.frame_id, node_id))
                return
            if ref is None:
                ref = ev.NodeRef(
                    execution_id,
                    node_id,
                    spec.type,
                    spec.version,
                    spec.title,
                    frame.container_type,
                    frame.index,
                )
                frame.refs[node_id] = ref
            frame.node_started[node_id] = at
            self.index += 1
            self.steps += 1
            if frame.parent is None:
                self.root_steps += 1
            data: dict[str, Any] = {
                "index": self.index,
                "predecessor_node_id": frame.predecessor.get(node_id),
                "extras": {},
            }
            self.emit(ev.NODE_STARTED, data, ref, frame, at)
        if spec.type in CONTAINER_TYPES:
            frame.running[node_id] = token
            self.start_container(frame, node_id, token)  # type: ignore[attr-defined]
            return
        ref = frame.refs.get(node_id)
        if runner.inline:
            try:
                result = runner.run_inline(frame.pool, self.ctx)
            except NodeError as exc:
                result = NodeResult.failure(exc.message, exc.error_type)
            except Exception as exc:
                result = NodeResult.failure(str(exc))
            self.apply(frame, node_id, result)
            return
        ctx = self.ctx.for_node(ref.execution_id if ref else "", node_id, frame.frame_id, None)
        try:
            prepared = runner.prepare(frame.pool, ctx)
        except NodeError as exc:
            self.apply(frame, node_id, NodeResult.failure(exc.message, exc.error_type))
            return
        except Exception as exc:
            self.apply(frame, node_id, NodeResult.failure(str(exc)))
            return
        frame.running[node_id] = token
        if self.replay is None:
            ctx.sink = self._sink(frame, node_id, token)
            self.tasks[(frame.frame_id, node_id)] = asyncio.ensure_future(
                self._run_task(frame, node_id, token, prepared, ctx)
            )

    def _sink(self, frame: Frame, node_id: str, token: int) -> Any:
        def sink(kind: str, selector: Sequence[str], text: str, is_final: bool) -> None:
            self.inbox.put_nowait(("chunk", token, frame, node_id, kind, list(selector), text, is_final))

        return sink

    async def _run_task(self, frame: Frame, node_id: str, token: int, prepared: Any, ctx: Any) -> None:
        try:
            result = await self.graph.runners[node_id].run(prepared, ctx)
        except asyncio.CancelledError:
            raise
        except NodeError as exc:
            result = NodeResult.failure(exc.message, exc.error_type)
        except Exception as exc:
            result = NodeResult.failure(str(exc))
        self.inbox.put_nowait(("result", token, frame, node_id, result))

    # -- applying -------------------------------------------------------------------------------

    def apply(self, frame: Frame, node_id: str, result: NodeResult) -> None:
        """Apply one attempt's result in the order of §5.2."""
        spec = self.graph.nodes[node_id]
        if frame.running.pop(node_id, None) is not None and self.tasks:
            self.tasks.pop((frame.frame_id, node_id), None)
        ref = frame.refs.get(node_id)
        if result.status == PAUSED:
            self._apply_pause(frame, node_id, result)
            return
        if spec.type not in CONTAINER_TYPES:  # containers' metadata repeats their children's usage
            self.total_tokens += int(result.metadata.get("total_tokens") or 0)
        if result.status == FAILED:
            self.exceptions += 1
            done = frame.retries.get(node_id, 0)
            if spec.can_retry and done < spec.retry.max_retries:
                frame.retries[node_id] = done + 1
                self._schedule_retry(frame, node_id, result, spec.retry.interval_ms / 1000)
                return
            if spec.error_strategy == "fail-branch":
                result = NodeResult(
                    status=EXCEPTION,
                    inputs=result.inputs,
                    process_data=result.process_data,
                    outputs={"error_message": result.error, "error_type": result.error_type},
                    metadata={"error_strategy": "fail-branch"},
                    edge_source_handle="fail-branch",
                    error=result.error,
                    error_type=result.error_type,
                )
            elif spec.error_strategy == "default-value":
                outputs = {
                    **spec.default_value,
                    "error_message": result.error,
                    "error_type": result.error_type,
                }
                result = NodeResult(
                    status=EXCEPTION,
                    inputs=result.inputs,
                    process_data=result.process_data,
                    outputs=outputs,
                    metadata={"error_strategy": "default-value"},
                    error=result.error,
                    error_type=result.error_type,
                )
            else:
                self._apply_failure(frame, node_id, result)
                return
        frame.node_state[node_id] = DONE
        for selector, value, value_type in result.updates:
            self.write_variable(frame, selector, value)
            data = {"selector": list(selector), "value_type": value_type, "value": to_jsonable(value)}
            self.emit(ev.NODE_VARIABLE_UPDATED, data, ref, frame)
        for kind, data in result.events:
            self.emit(kind, data, ref, frame)
        if result.outputs:
            frame.pool.set_outputs(node_id, result.outputs)
        self._route(frame, node_id, result.edge_source_handle if spec.is_branch else None)
        if spec.type in RESPONSE_TYPES:
            merge_outputs(frame.outputs, spec.type, result.outputs)
        elif spec.type == "loop-end":
            self._mark_loop_end(frame)
        self.flush_streams(node_id)
        if ref is not None:
            self._container_metadata(frame, result)
            kind = ev.NODE_EXCEPTION if result.status == EXCEPTION else ev.NODE_SUCCEEDED
            at = self.now()
            data = {"result": self.result_data(frame, node_id, result, at)}
            if result.status == EXCEPTION:
                data["error"] = result.error
            self.emit(kind, data, ref, frame, at)
            if kind == ev.NODE_SUCCEEDED and self.check_limits():
                return
        self.settle(frame)

    def _apply_failure(self, frame: Frame, node_id: str, result: NodeResult) -> None:
        frame.node_state[node_id] = DONE
        self.flush_streams(node_id)
        self._container_metadata(frame, result)
        at = self.now()
        data = {"result": self.result_data(frame, node_id, result, at), "error": result.error}
        self.emit(ev.NODE_FAILED, data, frame.refs.get(node_id), frame, at)
        if frame.parent is None:
            self.fail_run(result.error or "")
            return
        if self.check_limits():
            return
        # As the reference: the frame's other branches run on; the frame ends failed (§5.5).
        if frame.error is None:
            frame.error = result.error or ""
        self.settle(frame)

    def _apply_pause(self, frame: Frame, node_id: str, result: NodeResult) -> None:
        """A node asks for a pause: it is reset, deferred and re-runs on resume (§4.13, §5.12)."""
        ref = frame.refs[node_id]
        self.emit(ev.NODE_PAUSE_REQUESTED, {"reason": result.pause or {}}, ref, frame)
        frame.node_state[node_id] = READY
        frame.deferred.append(node_id)
        self.deferred_order.append((frame, node_id, False))
        self.paused_nodes[ref.execution_id] = (frame, node_id)
        self.pausing = True
        self.pause_reasons.append(dict(result.pause or {}))

    def _container_metadata(self, frame: Frame, result: NodeResult) -> None:
        if not frame.container_type:
            return
        key = "iteration_id" if frame.container_type == "iteration" else "loop_id"
        if key not in result.metadata:
            result.metadata = {
                **result.metadata,
                key: frame.container_id,
                f"{frame.container_type}_index": frame.index,
            }

    def _mark_loop_end(self, frame: Frame) -> None:
        current: Frame | None = frame
        while current is not None and current.container_type != "loop":
            current = current.parent
        if current is not None:
            current.loop_end = True

    def write_variable(self, frame: Frame, selector: tuple[str, str], value: Any) -> None:
        """A variable update; loop rounds write back what their parent also holds (§4.10)."""
        frame.pool.set(selector[0], selector[1], value)
        current = frame
        while current.container_type == "loop" and current.parent is not None:
            parent = current.parent
            if not parent.pool.has(selector):
                break
            parent.pool.set(selector[0], selector[1], value)
            current = parent

    # -- routing (§5.2, §5.3) -------------------------------------------------------------------

    def _route(self, frame: Frame, node_id: str, handle: str | None) -> None:
        edges = self.graph.out_edges[node_id]
        if handle is None:
            for edge in edges:
                self._take(frame, edge)
            return
        for edge in edges:
            if edge.source_handle != handle:
                self._skip(frame, edge)
        for edge in edges:
            if edge.source_handle == handle:
                self._take(frame, edge)

    @staticmethod
    def _edge_data(edge: EdgeSpec) -> dict[str, Any]:
        return {
            "edge_id": edge.id,
            "source_node_id": edge.source,
            "target_node_id": edge.target,
            "source_handle": edge.source_handle,
        }

    def _take(self, frame: Frame, edge: EdgeSpec) -> None:
        frame.edge_state[edge.id] = TAKEN
        self.emit(ev.EDGE_TAKEN, self._edge_data(edge), None, frame)
        if frame.parent is None:
            self.streams.on_edge_taken(edge.id)
        self._maybe_ready(frame, edge.target, edge.source)

    def _skip(self, frame: Frame, edge: EdgeSpec) -> None:
        frame.edge_state[edge.id] = SKIPPED
        self.emit(ev.EDGE_SKIPPED, self._edge_data(edge), None, frame)
        target = edge.target
        states = frame.edge_state
        incoming = [states.get(e.id) for e in self.graph.in_edges[target]]
        if None in incoming:
            return
        if TAKEN in incoming:
            self._maybe_ready(frame, target, None)
            return
        frame.node_state[target] = SKIPPED
        for out in self.graph.out_edges[target]:
            self._skip(frame, out)

    def _maybe_ready(self, frame: Frame, target: str, via: str | None) -> None:
        if target in frame.node_state:
            return
        incoming = self.graph.in_edges[target]
        states = frame.edge_state
        if len(incoming) > 1 and any(states.get(e.id) is None for e in incoming):
            return
        if via is None:
            via = next(e.source for e in incoming if states.get(e.id) == TAKEN)
        frame.predecessor[target] = via
        frame.node_state[target] = READY
        self.enqueue(frame, target)

    # -- retries (§5.8) -------------------------------------------------------------------------

    def _schedule_retry(self, frame: Frame, node_id: str, failed: NodeResult, delay: float) -> None:
        token = self.next_token()
        frame.running[node_id] = token
        item = ("retry", token, frame, node_id, failed)
        if self.replay is not None:
            self.pending_retries.append(item)
            return

        async def fire() -> None:
            await self.ports.clock.sleep(delay)
            self.inbox.put_nowait(item)

        self.timers[(frame.frame_id, node_id)] = asyncio.ensure_future(fire())

    def fire_retry(self, frame: Frame, node_id: str, failed: NodeResult) -> None:
        self.timers.pop((frame.frame_id, node_id), None)
        frame.running.pop(node_id, None)
        index = frame.retries[node_id]
        self.steps += 1
        if frame.parent is None:
            self.root_steps += 1
        at = self.now()
        data = {
            "retry_index": index,
            "error": failed.error,
            "result": self.result_data(frame, node_id, failed, at),
        }
        self.emit(ev.NODE_RETRY, data, frame.refs[node_id], frame, at)
        frame.retrying.add(node_id)
        frame.node_state[node_id] = READY
        self.enqueue(frame, node_id)

    # -- limits and endings (§5.7, §5.9, §5.10) -------------------------------------------------

    def check_limits(self) -> bool:
        """Abort when a limit is exceeded; ``True`` if the run ended."""
        settings = self.settings
        if self.steps > settings.max_steps:
            self.abort(
                f"Aborted: Maximum execution steps exceeded: {self.steps} > {settings.max_steps}", "limit"
            )
            return True
        elapsed = self.elapsed()
        if elapsed > settings.max_time_s:
            self.abort(time_limit_reason(elapsed, settings.max_time_s), "limit")
            return True
        return False

    def settle(self, frame: Frame) -> None:
        if self.terminal is None and frame.complete:
            self.finish_frame(frame)

    def finish_frame(self, frame: Frame) -> None:
        frame.finished = True
        self.frames.pop(frame.frame_id, None)
        if frame.parent is None:
            self.finish_run()
        else:
            self.child_frame_finished(frame)  # type: ignore[attr-defined]

    def finish_run(self) -> None:
        outputs = to_jsonable(self.root.outputs)
        if self.exceptions:
            data = {"outputs": outputs, **self.totals()}
            self.terminal = self.emit(ev.RUN_PARTIAL_SUCCEEDED, data)
        else:
            self.terminal = self.emit(ev.RUN_SUCCEEDED, {"outputs": outputs, **self.totals()})

    def fail_run(self, error: str) -> None:
        self.stop_everything()
        data = {"error": error, "outputs": to_jsonable(self.root.outputs), **self.totals()}
        self.terminal = self.emit(ev.RUN_FAILED, data)

    def abort(self, reason: str, cause: str) -> None:
        self.stop_everything()
        data = {"reason": reason, "cause": cause, "outputs": to_jsonable(self.root.outputs), **self.totals()}
        self.terminal = self.emit(ev.RUN_ABORTED, data)

    def stop_everything(self) -> None:
        """Nothing new starts; running tasks and timers are cancelled (their events discarded)."""
        self.ready.clear()
        for task in [*self.tasks.values(), *self.timers.values()]:
            task.cancel()
        self.tasks.clear()
        self.timers.clear()
        self.pending_retries.clear()
        for frame in self.frames.values():
            frame.finished = True

"""The engine: one serial apply loop drives node coroutines and emits one ordered event stream.

Node coroutines never touch shared state: they hand a ``NodeResult`` to the loop's inbox, and the
loop alone writes the pool, decides edges and emits events (§5.1), so the stream depends only on
the graph, the inputs, the port answers and the order in which results arrive.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from sluice.engine import events as ev
from sluice.engine.graph import HIDDEN_TYPES, RESPONSE_TYPES, CompiledGraph, EdgeSpec
from sluice.engine.nodes.base import EXCEPTION, FAILED, NodeError, NodeResult, RunContext
from sluice.engine.pool import VariablePool
from sluice.engine.ports import Ports
from sluice.engine.response import SKIPPED, TAKEN, ResponseStreams
from sluice.engine.values import to_jsonable

RUNNING, READY, DONE = "running", "ready", "done"


@dataclass(frozen=True, slots=True)
class EngineSettings:
    max_steps: int = 500
    max_time_s: float = 1200
    template_timeout_s: float = 10


@dataclass(slots=True)
class RunInput:
    run_id: str
    inputs: Mapping[str, Any]
    system: Mapping[str, Any] = field(default_factory=dict)
    env: Mapping[str, Any] = field(default_factory=dict)
    conversation: Mapping[str, Any] = field(default_factory=dict)
    segment: int = 0
    first_seq: int = 1


@dataclass(frozen=True, slots=True)
class Abort:
    reason: str | None = None
    cause: str = "user"


class Engine:
    """Runs a compiled graph. ``abort()`` may be called from any coroutine of the same loop."""

    def __init__(self, graph: CompiledGraph, ports: Ports, settings: EngineSettings | None = None) -> None:
        self.graph = graph
        self.ports = ports
        self.settings = settings or EngineSettings()
        self._inbox: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()

    def abort(self, reason: str | None = None) -> None:
        self._inbox.put_nowait(("command", Abort(reason)))

    async def run(self, run_input: RunInput) -> AsyncIterator[ev.Event]:
        run = _Run(self, run_input)
        try:
            async for event in run.execute():
                yield event
        finally:
            await run.cancel_all()


class _Run:
    def __init__(self, engine: Engine, run_input: RunInput) -> None:
        self.graph = engine.graph
        self.ports = engine.ports
        self.settings = engine.settings
        self.inbox = engine._inbox
        self.input = run_input
        self.ctx = RunContext(run_input.run_id, self.graph.app.mode, self.ports, self.settings)
        self.pool = VariablePool()
        self.seq = run_input.first_seq
        self.buffer: list[ev.Event] = []
        self.node_state: dict[str, str] = {}
        self.edge_state: dict[str, str] = {}
        self.ready: deque[str] = deque()
        self.refs: dict[str, ev.NodeRef] = {}
        self.started_at: dict[str, Any] = {}
        self.start_order: dict[str, int] = {}
        self.predecessor: dict[str, str | None] = {self.graph.root_id: None}
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.timers: set[asyncio.Task[None]] = set()
        self.retries: dict[str, int] = {}
        self.attempts: set[str] = set()
        self.steps = 0
        self.index = 0
        self.exceptions = 0
        self.outputs: dict[str, Any] = {}
        self.terminal: ev.Event | None = None
        self.started_mono = self.ports.clock.monotonic()
        self.streams = ResponseStreams(self.graph, self.pool, self.edge_state, self.node_state)

    # -- emission -------------------------------------------------------------------------------

    def emit(self, kind: str, data: dict[str, Any], node: ev.NodeRef | None = None) -> ev.Event:
        event = ev.Event(
            self.seq, kind, self.input.run_id, self.input.segment, self.ports.clock.now(), data, node
        )
        self.seq += 1
        self.buffer.append(event)
        return event

    def emit_chunk(self, chunk: dict[str, Any]) -> None:
        self.emit(ev.TEXT_CHUNK, chunk)

    def flush_streams(self) -> None:
        if self.streams.enabled:
            self.streams.flush(self.emit_chunk)

    # -- main loop ------------------------------------------------------------------------------

    async def execute(self) -> AsyncIterator[ev.Event]:
        self._seed_pool()
        self.emit(
            ev.RUN_STARTED,
            {
                "reason": "initial",
                "inputs": to_jsonable(dict(self.input.inputs)),
                "graph_fingerprint": self.graph.fingerprint,
            },
        )
        self.streams.activate_ready()
        self.flush_streams()
        self.ready.append(self.graph.root_id)
        self.node_state[self.graph.root_id] = READY
        watchdog = asyncio.ensure_future(self._watchdog())
        try:
            while self.terminal is None:
                while self.ready and self.terminal is None:
                    node_id = self.ready.popleft()
                    attempt = node_id in self.attempts
                    self.attempts.discard(node_id)
                    self._start(node_id, attempt)
                if self.buffer:
                    for event in self._drain():
                        yield event
                if self.terminal is not None:
                    break
                if not self.tasks and not self.timers:
                    self._finish()
                    break
                await self._receive()
            for event in self._drain():
                yield event
        finally:
            watchdog.cancel()

    def _drain(self) -> list[ev.Event]:
        out, self.buffer = self.buffer, []
        return out

    async def _receive(self) -> None:
        items = [await self.inbox.get()]
        while not self.inbox.empty():
            items.append(self.inbox.get_nowait())
        commands = [i for i in items if i[0] != "result"]
        results = sorted((i for i in items if i[0] == "result"), key=lambda i: self.start_order[i[1]])
        for item in commands:
            self._command(item)
        for _, node_id, result in results:
            if self.terminal is not None:
                return
            self.tasks.pop(node_id, None)
            self._apply(node_id, result)

    def _command(self, item: tuple[Any, ...]) -> None:
        if self.terminal is not None:
            return
        if item[0] == "command" and isinstance(item[1], Abort):
            reason = "Aborted: " + (item[1].reason or "User requested abort")
            self._abort(reason, item[1].cause)
        elif item[0] == "deadline":
            elapsed = self.ports.clock.monotonic() - self.started_mono
            self._abort(
                f"Aborted: Maximum execution time exceeded: {elapsed:.2f}s > {self.settings.max_time_s:g}s",
                "limit",
            )
        elif item[0] == "retry":
            self._retry(item[1], item[2])

    async def _watchdog(self) -> None:
        await self.ports.clock.sleep(self.settings.max_time_s)
        self.inbox.put_nowait(("deadline",))

    # -- starting nodes -------------------------------------------------------------------------

    def _seed_pool(self) -> None:
        for name, value in self.input.system.items():
            self.pool.set("sys", name, value)
        for name, value in self.input.env.items():
            self.pool.set("env", name, value)
        for name, value in self.input.conversation.items():
            self.pool.set("conversation", name, value)
        for name, value in self.input.inputs.items():
            self.pool.set(self.graph.root_id, name, value)

    def _start(self, node_id: str, attempt: bool = False) -> None:
        spec = self.graph.nodes[node_id]
        runner = self.graph.runners[node_id]
        self.node_state[node_id] = RUNNING
        if not attempt:
            ref = ev.NodeRef(
                self.ports.ids.new("node_execution"), node_id, spec.type, spec.version, spec.title
            )
            self.refs[node_id] = ref
            self.start_order[node_id] = len(self.start_order)
            self.started_at[node_id] = self.ports.clock.now()
            if spec.type not in HIDDEN_TYPES:
                self.index += 1
                self.steps += 1
                self.emit(
                    ev.NODE_STARTED,
                    {"index": self.index, "predecessor_node_id": self.predecessor.get(node_id), "extras": {}},
                    ref,
                )
        if runner.inline:
            try:
                result = runner.run_inline(self.pool, self.ctx)
            except NodeError as exc:
                result = NodeResult.failure(exc.message, exc.error_type)
            except Exception as exc:
                result = NodeResult.failure(str(exc))
            self._apply(node_id, result)
            return
        try:
            prepared = runner.prepare(self.pool, self.ctx)
        except NodeError as exc:
            self._apply(node_id, NodeResult.failure(exc.message, exc.error_type))
            return
        except Exception as exc:
            self._apply(node_id, NodeResult.failure(str(exc)))
            return
        self.tasks[node_id] = asyncio.ensure_future(self._run_task(node_id, prepared))

    async def _run_task(self, node_id: str, prepared: Any) -> None:
        try:
            result = await self.graph.runners[node_id].run(prepared, self.ctx)
        except asyncio.CancelledError:
            raise
        except NodeError as exc:
            result = NodeResult.failure(exc.message, exc.error_type)
        except Exception as exc:
            result = NodeResult.failure(str(exc))
        self.inbox.put_nowait(("result", node_id, result))

    # -- applying results -----------------------------------------------------------------------

    def _result_data(self, node_id: str, result: NodeResult) -> dict[str, Any]:
        return {
            "status": result.status,
            "inputs": to_jsonable(result.inputs),
            "process_data": to_jsonable(result.process_data),
            "outputs": to_jsonable(result.outputs),
            "metadata": to_jsonable(result.metadata),
            "llm_usage": result.llm_usage,
            "edge_source_handle": result.edge_source_handle,
            "error": result.error,
            "error_type": result.error_type,
            "started_at": self.started_at[node_id].isoformat(),
            "finished_at": self.ports.clock.now().isoformat(),
        }

    def _apply(self, node_id: str, result: NodeResult) -> None:
        spec = self.graph.nodes[node_id]
        ref = self.refs[node_id]
        if result.status == FAILED:
            self.exceptions += 1
            done = self.retries.get(node_id, 0)
            if spec.can_retry and done < spec.retry.max_retries:
                self.retries[node_id] = done + 1
                self._schedule_retry(node_id, result, spec.retry.interval_ms / 1000)
                return
            if spec.error_strategy == "fail-branch":
                result.status, result.edge_source_handle = EXCEPTION, "fail-branch"
                result.outputs = {"error_message": result.error, "error_type": result.error_type}
                result.metadata = {**result.metadata, "error_strategy": "fail-branch"}
            elif spec.error_strategy == "default-value":
                result.status = EXCEPTION
                result.outputs = {
                    **spec.default_value,
                    "error_message": result.error,
                    "error_type": result.error_type,
                }
                result.metadata = {**result.metadata, "error_strategy": "default-value"}
            else:
                self.node_state[node_id] = DONE
                self.flush_streams()
                self.emit(
                    ev.NODE_FAILED, {"result": self._result_data(node_id, result), "error": result.error}, ref
                )
                self._fail(result.error or "")
                return
        self.node_state[node_id] = DONE
        self.pool.set_outputs(node_id, result.outputs)
        self._route(node_id, result.edge_source_handle if spec.is_branch else None)
        if spec.type in RESPONSE_TYPES and not spec.container_id:
            self._merge_outputs(spec.type, result.outputs)
        self.flush_streams()
        kind = ev.NODE_EXCEPTION if result.status == EXCEPTION else ev.NODE_SUCCEEDED
        self.emit(kind, {"result": self._result_data(node_id, result)}, ref)
        if kind == ev.NODE_SUCCEEDED:
            self._check_limits()

    def _merge_outputs(self, node_type: str, outputs: Mapping[str, Any]) -> None:
        if node_type == "answer":
            self.outputs["answer"] = str(self.outputs.get("answer", "")) + str(outputs.get("answer", ""))
            if outputs.get("files"):
                self.outputs["files"] = [*self.outputs.get("files", []), *outputs["files"]]
        else:
            self.outputs.update(outputs)

    def _route(self, node_id: str, handle: str | None) -> None:
        edges = self.graph.out_edges[node_id]
        if handle is None:
            for edge in edges:
                self._take(edge)
            return
        for edge in edges:
            if edge.source_handle != handle:
                self._skip(edge)
        for edge in edges:
            if edge.source_handle == handle:
                self._take(edge)

    def _edge_data(self, edge: EdgeSpec) -> dict[str, Any]:
        return {
            "edge_id": edge.id,
            "source_node_id": edge.source,
            "target_node_id": edge.target,
            "source_handle": edge.source_handle,
        }

    def _take(self, edge: EdgeSpec) -> None:
        self.edge_state[edge.id] = TAKEN
        self.emit(ev.EDGE_TAKEN, self._edge_data(edge))
        if self.streams.enabled and self.streams.is_blocking(edge.id):
            self.streams.activate_ready()
        self._maybe_ready(edge.target, edge.source)

    def _skip(self, edge: EdgeSpec) -> None:
        self.edge_state[edge.id] = SKIPPED
        self.emit(ev.EDGE_SKIPPED, self._edge_data(edge))
        target = edge.target
        incoming = [self.edge_state.get(e.id) for e in self.graph.in_edges[target]]
        if None in incoming:
            return
        if TAKEN in incoming:
            self._maybe_ready(target, None)
            return
        self.node_state[target] = SKIPPED
        for out in self.graph.out_edges[target]:
            self._skip(out)

    def _maybe_ready(self, target: str, via: str | None) -> None:
        if target in self.node_state:
            return
        incoming = self.graph.in_edges[target]
        if any(self.edge_state.get(e.id) is None for e in incoming):
            return
        if via is None:
            via = next(e.source for e in incoming if self.edge_state.get(e.id) == TAKEN)
        self.predecessor[target] = via
        self.node_state[target] = READY
        self.ready.append(target)

    # -- retries, limits, endings ---------------------------------------------------------------

    def _schedule_retry(self, node_id: str, result: NodeResult, delay: float) -> None:
        async def fire() -> None:
            await self.ports.clock.sleep(delay)
            self.inbox.put_nowait(("retry", node_id, result))

        timer = asyncio.ensure_future(fire())
        self.timers.add(timer)
        timer.add_done_callback(self.timers.discard)

    def _retry(self, node_id: str, failed: NodeResult) -> None:
        index = self.retries[node_id]
        self.steps += 1
        self.emit(
            ev.NODE_RETRY,
            {"retry_index": index, "error": failed.error, "result": self._result_data(node_id, failed)},
            self.refs[node_id],
        )
        self.attempts.add(node_id)
        self.ready.append(node_id)

    def _check_limits(self) -> None:
        if self.steps > self.settings.max_steps:
            self._abort(
                f"Aborted: Maximum execution steps exceeded: {self.steps} > {self.settings.max_steps}",
                "limit",
            )
            return
        elapsed = self.ports.clock.monotonic() - self.started_mono
        if elapsed > self.settings.max_time_s:
            self._abort(
                f"Aborted: Maximum execution time exceeded: {elapsed:.2f}s > {self.settings.max_time_s:g}s",
                "limit",
            )

    def _finish(self) -> None:
        outputs = to_jsonable(self.outputs)
        if self.exceptions:
            self.terminal = self.emit(
                ev.RUN_PARTIAL_SUCCEEDED, {"outputs": outputs, "exceptions_count": self.exceptions}
            )
        else:
            self.terminal = self.emit(ev.RUN_SUCCEEDED, {"outputs": outputs})
        self._set_totals()

    def _fail(self, error: str) -> None:
        self._stop_everything()
        self.terminal = self.emit(
            ev.RUN_FAILED,
            {"error": error, "exceptions_count": self.exceptions, "outputs": to_jsonable(self.outputs)},
        )
        self._set_totals()

    def _abort(self, reason: str, cause: str) -> None:
        self._stop_everything()
        self.terminal = self.emit(
            ev.RUN_ABORTED, {"reason": reason, "cause": cause, "outputs": to_jsonable(self.outputs)}
        )
        self._set_totals()

    def _set_totals(self) -> None:
        assert self.terminal is not None
        self.terminal.data.update(total_steps=self.steps, total_tokens=0, exceptions_count=self.exceptions)

    def _stop_everything(self) -> None:
        self.ready.clear()
        for task in [*self.tasks.values(), *self.timers]:
            task.cancel()

    async def cancel_all(self) -> None:
        pending = [*self.tasks.values(), *self.timers]
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        self.tasks.clear()

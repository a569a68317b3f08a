"""The state of one run segment and the one place that emits its events."""

from __future__ import annotations

import asyncio
from collections import deque
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sluice.engine import events as ev
from sluice.engine.checks import parsed_value
from sluice.engine.frames import ROOT, Frame
from sluice.engine.nodes.base import NodeResult, RunContext
from sluice.engine.pool import VariablePool
from sluice.engine.replay import RecordedLog
from sluice.engine.response import ResponseStreams
from sluice.engine.settings import EngineSettings, RunInput
from sluice.engine.values import Secret, to_jsonable

if TYPE_CHECKING:
    from sluice.engine.graph import CompiledGraph
    from sluice.engine.ports import Ports

InboxItem = tuple[Any, ...]


class RunState:
    """Run-wide state: frames, the ready queue, tasks, counters, outputs and emission.

    ``emit`` appends to ``buffer`` (the loop yields it), or, while replaying, takes the matching
    recorded event instead (see ``replay``)."""

    def __init__(
        self,
        graph: CompiledGraph,
        ports: Ports,
        settings: EngineSettings,
        run_input: RunInput,
        inbox: asyncio.Queue[InboxItem],
        recorded: RecordedLog | None = None,
    ) -> None:
        self.graph = graph
        self.ports = ports
        self.settings = settings
        self.input = run_input
        self.run_id = run_input.run_id
        self.segment = run_input.segment
        self.seq = run_input.first_seq
        self.inbox = inbox
        self.replay = recorded
        self.buffer: list[ev.Event] = []
        self.ctx = RunContext(run_input.run_id, graph.app.mode, ports, settings, graph.declared_types)
        self.root = Frame(ROOT, self._seed_pool(), graph.root_id)
        self.frames: dict[str, Frame] = {ROOT: self.root}
        self.ready: deque[tuple[Frame, str]] = deque()
        self.tasks: dict[tuple[str, str], asyncio.Task[None]] = {}
        self.timers: dict[tuple[str, str], asyncio.Task[None]] = {}
        self.pending_retries: list[InboxItem] = []
        """Replay: retry timers that fire when their ``node_retry`` marker is reached."""
        self.tokens = 0
        self.steps = 0
        """Steps against ``max_steps``: node starts and retries in every frame (§5.10)."""
        self.root_steps = 0
        """``total_steps``: node attempts in the root frame (§5.9)."""
        self.index = 0
        self.exceptions = 0
        self.total_tokens = 0
        self.terminal: ev.Event | None = None
        self.pausing = False
        self.pause_reasons: list[dict[str, Any]] = []
        self.deferred_order: list[tuple[Frame, str, bool]] = []
        """Held by a pause, in order: ``(frame, node_id, is_container_continuation)``."""
        self.paused_nodes: dict[str, tuple[Frame, str]] = {}
        """Pause-requesting executions by execution id."""
        self.released: set[tuple[str, str]] = set()
        self.unrecorded: set[tuple[str, str]] = set()
        """Sparse replay: nodes with no recorded result, run again live after the replay."""
        """``(frame_id, node_id)`` the pause gate released: they start although the run pauses."""
        self.step_at: datetime | None = None
        """The clock read once for one step of the loop (a node start, an applied result): the
        events of one step share their time."""
        self.prior_active_s = 0.0
        self.started_mono = 0.0
        self.streams = ResponseStreams(graph, self.root, self._emit_text, self._emit_reasoning)

    def _seed_pool(self) -> VariablePool:
        pool = VariablePool()
        for name, value in self.input.system.items():
            pool.set("sys", name, value)
        for var in self.graph.environment_variables:
            name = str(var.get("name"))
            if name not in self.input.env:
                value = parsed_value(var)
                pool.set("env", name, Secret(value or "") if var.get("value_type") == "secret" else value)
        for name, value in self.input.env.items():
            pool.set("env", name, value)
        for var in self.graph.conversation_variables:
            name = str(var.get("name"))
            if name not in self.input.conversation:
                pool.set("conversation", name, parsed_value(var))
        for name, value in self.input.conversation.items():
            pool.set("conversation", name, value)
        for name, value in self.input.inputs.items():
            pool.set(self.graph.root_id, name, value)
        return pool

    # -- time and emission ----------------------------------------------------------------------

    def now(self) -> datetime:
        if self.replay is not None:
            return self.replay.now()
        return self.step_at or self.ports.clock.now()

    def emit(
        self,
        kind: str,
        data: dict[str, Any],
        node: ev.NodeRef | None = None,
        frame: Frame | None = None,
        at: datetime | None = None,
    ) -> ev.Event:
        frame = frame or self.root
        if self.replay is not None and self.replay.sparse and kind in ev.RUN_TERMINAL:
            self.leave_sparse_replay()  # everything was recorded but the run's end
        if self.replay is not None and self.replay.sparse:
            at = self.replay.now()
            return ev.Event(
                0, kind, self.run_id, self.segment, at, data, node, frame.container_id, frame.frame_id
            )
        if self.replay is not None:
            record = self.replay.take(kind, node.node_id if node else None, frame.frame_id)
            return ev.Event(
                int(record["seq"]),
                kind,
                self.run_id,
                int(record.get("segment", 0)),
                self.replay.last_at or self.replay.now(),
                data,
                node,
                frame.container_id,
                frame.frame_id,
            )
        event = ev.Event(
            self.seq,
            kind,
            self.run_id,
            self.segment,
            at or self.step_at or self.ports.clock.now(),
            data,
            node,
            frame.container_id,
            frame.frame_id,
        )
        self.seq += 1
        self.buffer.append(event)
        return event

    def leave_sparse_replay(self) -> None:
        """Overridden by the scheduler: continue live after a replay of node results."""

    def _emit_text(self, selector: list[str], text: str, is_final: bool, node_id: str) -> None:
        self.emit(
            ev.TEXT_CHUNK,
            {"selector": selector, "text": text, "is_final": is_final, "attributed_node_id": node_id},
        )

    def _emit_reasoning(self, selector: list[str], text: str, is_final: bool, node_id: str) -> None:
        self.emit(
            ev.REASONING_CHUNK,
            {"selector": selector, "text": text, "is_final": is_final, "attributed_node_id": node_id},
        )

    def flush_streams(self, changed: str | None = None) -> None:
        if self.streams.enabled:
            self.streams.flush(changed)

    def result_data(self, frame: Frame, node_id: str, result: NodeResult, at: datetime) -> dict[str, Any]:
        finished = at.isoformat()
        started = frame.node_started.get(node_id)
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
            "started_at": finished if started is None or started == at else started.isoformat(),
            "finished_at": finished,
        }

    def next_token(self) -> int:
        self.tokens += 1
        return self.tokens

    def elapsed(self) -> float:
        """Active time of the run: earlier segments plus this one."""
        if self.replay is not None:
            return self.prior_active_s
        return self.prior_active_s + self.ports.clock.monotonic() - self.started_mono

    def totals(self) -> dict[str, Any]:
        return {
            "total_steps": self.root_steps,
            "total_tokens": self.total_tokens,
            "exceptions_count": self.exceptions,
        }

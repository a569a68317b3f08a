"""Pause, resume and replay (§5.12), split from the scheduler's loop.

A pause holds what would start next; at an idle point the ``PauseGate`` may release answered
forms, else the segment ends ``run_paused``. Resume replays the recorded events through the same
apply logic (see ``replay``), then emits ``run_started{reason: "resumption"}`` and starts what the
pause held.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from sluice.engine import events as ev
from sluice.engine.commands import Command
from sluice.engine.containers import ContainerDriver
from sluice.engine.frames import READY, Frame
from sluice.engine.replay import TASK_MARKERS, RecordedLog, ResumeError, SparseLog, result_from_record
from sluice.engine.runstate import InboxItem
from sluice.engine.snapshot import build_snapshot
from sluice.engine.values import to_jsonable


class PauseResume(ContainerDriver):
    commands: deque[Command]
    snapshot_only: bool
    final_snapshot: dict[str, Any] | None
    pause_reason_of: dict[str, dict[str, Any]]
    helpers: list[asyncio.Task[None]]

    def _process(self, item: InboxItem) -> None:
        raise NotImplementedError

    def _check_commands(self) -> None:
        raise NotImplementedError

    async def _watchdog(self, seconds: float) -> None:
        raise NotImplementedError

    # -- pause and resume (§5.12) ---------------------------------------------------------------

    async def _pause_point(self) -> None:
        if self.replay is not None:
            self._pause_point_replay()
            return
        gate = self.ports.pause_gate
        if gate is not None:
            ids = [
                i
                for i in await gate.commit(build_snapshot(self), list(self.pause_reasons))
                if i in self.paused_nodes
            ]
            if ids:
                self.emit(ev.PAUSE_RELEASED, {"execution_ids": ids})
                self._release_executions(ids)
                return
        self._emit_paused()

    def _pause_point_replay(self) -> None:
        assert self.replay is not None
        record = self.replay.peek()
        if record is None or self.replay.sparse:
            self._end_replay()
        elif record.get("kind") == ev.PAUSE_RELEASED:
            ids = [str(i) for i in record.get("execution_ids") or []]
            self.emit(ev.PAUSE_RELEASED, {"execution_ids": ids})
            self._release_executions(ids)
        elif record.get("kind") == ev.RUN_PAUSED:
            if self.snapshot_only and self.replay.pos == len(self.replay.events) - 1:
                self.final_snapshot = build_snapshot(self)
                return
            self._emit_paused()
            if self.replay.exhausted:
                self._end_replay()
            else:
                self._resume_transition()
        else:
            raise ResumeError(
                "resume.replay_mismatch",
                f"replay paused where the log has {record.get('kind')} (seq {record.get('seq')})",
            )

    def _emit_paused(self) -> None:
        deferred = [
            {
                "node_id": node_id,
                "frame_id": frame.frame_id,
                "execution_id": ref.execution_id if ref else None,
            }
            for frame, node_id, is_container in self.deferred_order
            if not is_container and not frame.finished
            for ref in (frame.refs.get(node_id),)
        ]
        data = {
            "reasons": to_jsonable(self.pause_reasons),
            "deferred": deferred,
            "outputs": to_jsonable(self.root.outputs),
            **self.totals(),
        }
        event = self.emit(ev.RUN_PAUSED, data)
        if self.replay is None:
            self.terminal = event

    def _release_executions(self, ids: list[str]) -> None:
        for execution_id in ids:
            frame, node_id = self.paused_nodes.pop(execution_id)
            if node_id in frame.deferred:
                frame.deferred.remove(node_id)
            self.deferred_order = [d for d in self.deferred_order if not (d[0] is frame and d[1] == node_id)]
            reason = self.pause_reason_of.pop(execution_id, None)
            if reason in self.pause_reasons:
                self.pause_reasons.remove(reason)
            self.released.add((frame.frame_id, node_id))
            self.enqueue(frame, node_id)
        if not self.pause_reasons:
            self._unpause()

    def _unpause(self) -> None:
        self.pausing = False
        held, self.deferred_order = self.deferred_order, []
        self.paused_nodes.clear()
        self.pause_reason_of.clear()
        for frame, node_id, is_container in held:
            if frame.finished:
                continue
            if is_container:
                self.resume_container(frame, node_id)
            elif node_id in frame.deferred:
                frame.deferred.remove(node_id)
                self.enqueue(frame, node_id)

    def _resume_transition(self) -> None:
        self.pause_reasons = []
        data = {
            "reason": "resumption",
            "inputs": to_jsonable(dict(self.input.inputs)),
            "graph_fingerprint": self.graph.fingerprint,
        }
        self.emit(ev.RUN_STARTED, data)
        self._unpause()

    def leave_sparse_replay(self) -> None:
        log = self.replay
        assert isinstance(log, SparseLog)
        self.replay = None
        self.seq = max(self.input.first_seq, log.last_seq + 1)
        data = {
            "reason": "resumption",
            "inputs": to_jsonable(dict(self.input.inputs)),
            "graph_fingerprint": self.graph.fingerprint,
        }
        self.emit(ev.RUN_STARTED, data)

    def _end_replay(self) -> None:
        """The log is exhausted: the rest of this segment is live."""
        assert self.replay is not None
        if self.snapshot_only:
            self.final_snapshot = build_snapshot(self)
            return
        log = self.replay
        self.replay = None
        if isinstance(log, SparseLog):
            self.seq = max(self.input.first_seq, log.last_seq + 1)
            self._restart_unfinished()
        else:
            last = log.events[-1]
            self.prior_active_s = active_seconds(log)
            self.seq = int(last.get("seq", 0)) + 1
            self.segment = max(self.input.segment, int(last.get("segment", 0)) + 1)
            if last.get("kind") != ev.RUN_PAUSED:
                self._restart_unfinished()
        self.started_mono = self.ports.clock.monotonic()
        remaining = self.settings.max_time_s - self.prior_active_s
        self.helpers.append(asyncio.ensure_future(self._watchdog(remaining)))
        self._resume_transition()

    def _restart_unfinished(self) -> None:
        """A crashed segment: what had started without finishing runs again (same ids)."""
        self.pending_retries.clear()
        for frame in list(self.frames.values()):
            for node_id in list(frame.running):
                if node_id in frame.containers:
                    continue
                frame.running.pop(node_id)
                if (frame.frame_id, node_id) in self.unrecorded:
                    frame.refs.pop(node_id, None)  # it never finished: a new execution
                frame.retrying.discard(node_id)
                frame.node_state[node_id] = READY
                frame.deferred.append(node_id)
                self.deferred_order.append((frame, node_id, False))

    # -- replay (§5.12) -------------------------------------------------------------------------

    def _receive_replay(self) -> None:
        assert self.replay is not None
        log = self.replay
        self._check_commands()
        if self.replay is None:
            return
        if isinstance(log, SparseLog):
            self._arrival_sparse(log)
            return
        index = log.next_marker(TASK_MARKERS)
        if index is None:
            self._end_replay()
            return
        record = log.events[index]
        frame = self.frames.get(str(record.get("frame_id", "root")))
        node_id = str(record.get("node_id"))
        if frame is None or node_id not in frame.running:
            raise ResumeError(
                "resume.replay_mismatch", f"log has {record.get('kind')} of {node_id}, which is not running"
            )
        token = frame.running[node_id]
        kind = record["kind"]
        if kind in (ev.NODE_STREAM_CHUNK, ev.NODE_REASONING_CHUNK):
            chunk_kind = "stream" if kind == ev.NODE_STREAM_CHUNK else "reasoning"
            selector = [str(s) for s in record.get("selector") or []]
            text, final = str(record.get("chunk", "")), bool(record.get("is_final"))
            self._process(("chunk", token, frame, node_id, chunk_kind, selector, text, final))
        elif kind == ev.NODE_RETRY:
            self.apply(frame, node_id, result_from_record(record, []))
            pending = [i for i in self.pending_retries if i[2] is frame and i[3] == node_id]
            for item in pending:
                self.pending_retries.remove(item)
                self._process(item)
        else:
            side = log.side_events(index, str(record.get("execution_id")))
            result = result_from_record(record, side)
            self._process(("result", token, frame, node_id, result))
        self._check_commands()

    def _arrival_sparse(self, log: SparseLog) -> None:
        running = {
            (f.frame_id, n)
            for f in self.frames.values()
            for n in f.running
            if n not in f.containers and (f.frame_id, n) not in self.unrecorded
        }
        index = log.arrival(running)
        if index is None:
            self._end_replay()
            return
        record = log.events[index]
        frame = self.frames[str(record.get("frame_id", "root"))]
        node_id = str(record.get("node_id"))
        result = result_from_record(record, [])
        spec = self.graph.nodes[node_id]
        if spec.can_retry:  # the record is the last attempt's result
            frame.retries[node_id] = spec.retry.max_retries
        self._process(("result", frame.running[node_id], frame, node_id, result))

    def _apply_pause(self, frame: Frame, node_id: str, result: Any) -> None:
        super()._apply_pause(frame, node_id, result)
        ref = frame.refs[node_id]
        self.pause_reason_of[ref.execution_id] = self.pause_reasons[-1]


def active_seconds(log: RecordedLog) -> float:
    """Active time of the recorded segments: each from its ``run_started`` to its last event."""
    total = 0.0
    start = None
    for index, record in enumerate(log.events):
        if record.get("kind") == ev.RUN_STARTED:
            start = log.at(index)
        if start is not None and (
            index == len(log.events) - 1 or log.events[index + 1].get("kind") == ev.RUN_STARTED
        ):
            total += (log.at(index) - start).total_seconds()
            start = None
    return total

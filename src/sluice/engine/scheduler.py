"""The engine: one serial apply loop drives node coroutines and emits one ordered event stream.

Node coroutines never touch shared state: they hand a ``NodeResult`` to the loop's inbox, and the
loop alone writes pools, decides edges and emits events (§5.1), so the stream depends only on
the graph, the inputs, the port answers and the times at which results and commands arrive.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from sluice.engine import events as ev
from sluice.engine.commands import Abort, Command, Pause, UpdateVariables, parse_command
from sluice.engine.frames import Frame
from sluice.engine.graph import CompiledGraph
from sluice.engine.outputs import time_limit_reason
from sluice.engine.ports import Ports
from sluice.engine.replay import (
    COMMAND_MARKERS,
    RecordedLog,
    ResumeError,
    SparseLog,
)
from sluice.engine.resume import PauseResume
from sluice.engine.runstate import InboxItem
from sluice.engine.settings import EngineSettings, RunInput
from sluice.engine.snapshot import build_snapshot
from sluice.engine.values import to_jsonable

__all__ = ["Engine", "EngineSettings", "ResumeError", "RunInput"]


class Engine:
    """Runs a compiled graph, one segment per ``run``/``resume`` call.

    ``abort``, ``pause`` and ``update_variables`` may be called from any coroutine of the same
    event loop; commands also arrive through ``ports.commands``."""

    def __init__(self, graph: CompiledGraph, ports: Ports, settings: EngineSettings | None = None) -> None:
        self.graph = graph
        self.ports = ports
        self.settings = settings or EngineSettings()
        self._inbox: asyncio.Queue[InboxItem] = asyncio.Queue()
        self._commands: deque[Command] = deque()
        self._current: _Run | None = None

    def abort(self, reason: str | None = None) -> None:
        self._command(Abort(reason))

    def pause(self, reason: str | None = None) -> None:
        self._command(Pause(reason or "unknown reason"))

    def update_variables(self, updates: Sequence[Mapping[str, Any]]) -> None:
        self._command(UpdateVariables(tuple(updates)))

    def _command(self, command: Command) -> None:
        self._commands.append(command)
        self._inbox.put_nowait(("wake",))

    async def run(self, run_input: RunInput) -> AsyncIterator[ev.Event]:
        async for event in self._drive(_Run(self, run_input, None)):
            yield event

    async def resume(
        self, run_input: RunInput, recorded_events: Sequence[Mapping[str, Any]]
    ) -> AsyncIterator[ev.Event]:
        """Continue a run from the events it emitted so far (``Event.to_dict()`` dicts, in order).

        The log is replayed through the apply logic without calling any port (§5.12): finished
        nodes keep their recorded results, then the segment emits ``run_started{reason:
        "resumption"}`` and starts what the pause deferred; nodes that had started without
        finishing (a crashed segment) run again with their execution ids. Raises ``ResumeError``
        before the first event when the log does not belong to this graph or cannot continue."""
        run = _Run(self, run_input, check_log(self.graph, recorded_events))
        async for event in self._drive(run):
            yield event

    async def replay_snapshot(
        self, run_input: RunInput, recorded_events: Sequence[Mapping[str, Any]]
    ) -> dict[str, Any]:
        """The state a paused log leaves, by replay alone (no port is called): it equals the
        snapshot the live segment gave its ``PauseGate``."""
        run = _Run(self, run_input, check_log(self.graph, recorded_events), snapshot_only=True)
        async for _ in self._drive(run):
            pass
        assert run.final_snapshot is not None
        return run.final_snapshot

    def snapshot(self) -> dict[str, Any] | None:
        """The current segment's state (§5.12), or ``None`` when nothing runs."""
        return None if self._current is None else build_snapshot(self._current)

    async def _drive(self, run: _Run) -> AsyncIterator[ev.Event]:
        self._current = run
        try:
            async for event in run.execute():
                yield event
        finally:
            self._current = None
            await run.cancel_all()


def check_log(graph: CompiledGraph, events: Sequence[Mapping[str, Any]]) -> RecordedLog:
    """A complete log (it starts with ``run_started``) or a log of node results only."""
    if not events or events[0].get("kind") != ev.RUN_STARTED:
        return SparseLog(events)
    if events[0].get("graph_fingerprint") != graph.fingerprint:
        raise ResumeError("resume.graph_mismatch", "the recorded run belongs to another version of the graph")
    last = events[-1].get("kind")
    if last in ev.RUN_TERMINAL and last != ev.RUN_PAUSED:
        raise ResumeError("resume.run_finished", f"the recorded run already ended with {last}")
    return RecordedLog(events)


class _Run(PauseResume):
    def __init__(
        self,
        engine: Engine,
        run_input: RunInput,
        recorded: RecordedLog | None,
        *,
        snapshot_only: bool = False,
    ) -> None:
        super().__init__(engine.graph, engine.ports, engine.settings, run_input, engine._inbox, recorded)
        self.commands = engine._commands
        self.snapshot_only = snapshot_only
        self.final_snapshot: dict[str, Any] | None = None
        self.pause_reason_of: dict[str, dict[str, Any]] = {}
        self.helpers: list[asyncio.Task[None]] = []

    # -- the loop -------------------------------------------------------------------------------

    async def execute(self) -> AsyncIterator[ev.Event]:
        self.started_mono = self.ports.clock.monotonic() if self.replay is None else 0.0
        while not self.inbox.empty():  # leftovers of an earlier segment on this engine
            self.inbox.get_nowait()
        if self.ports.commands is not None and not self.snapshot_only:
            self.helpers.append(asyncio.ensure_future(self._read_commands()))
        if self.replay is None:
            self.helpers.append(asyncio.ensure_future(self._watchdog(self.settings.max_time_s)))
        self._begin()
        while self.terminal is None and self.final_snapshot is None:
            self._drain_ready()
            if self.buffer:
                out, self.buffer = self.buffer, []
                for event in out:
                    yield event
            if self.terminal is not None or self.final_snapshot is not None:
                break
            if self.ready:
                continue
            if self._busy():
                if self.replay is not None:
                    self._receive_replay()
                else:
                    await self._receive()
            elif self.pausing:
                await self._pause_point()
            elif self.replay is not None:
                self._receive_replay()
            else:  # pragma: no cover - a complete root frame ends the run before this
                self.fail_run("Internal error: the run stalled")
        out, self.buffer = self.buffer, []
        for event in out:
            yield event

    def _busy(self) -> bool:
        if self.replay is None:
            return bool(self.tasks or self.timers)
        if self.pending_retries:
            return True
        return any(n not in f.containers for f in self.frames.values() for n in f.running)

    def _begin(self) -> None:
        data = {
            "reason": "initial",
            "inputs": to_jsonable(dict(self.input.inputs)),
            "graph_fingerprint": self.graph.fingerprint,
        }
        self.emit(ev.RUN_STARTED, data)
        self.streams.activate_ready()
        self.flush_streams()
        self.enqueue(self.root, self.graph.root_id)

    def _drain_ready(self) -> None:
        while self.ready and self.terminal is None:
            if self.commands or self.replay is not None:
                self._check_commands()
                if self.terminal is not None or not self.ready:
                    break
            frame, node_id = self.ready.popleft()
            if frame.finished:
                continue
            frame.queued -= 1
            key = (frame.frame_id, node_id)
            # A node between retry attempts is still running: a pause waits for its outcome.
            if self.pausing and key not in self.released and node_id not in frame.retrying:
                frame.deferred.append(node_id)
                self.deferred_order.append((frame, node_id, False))
                continue
            self.released.discard(key)
            self.step_at = self.ports.clock.now() if self.replay is None else None
            self.start_node(frame, node_id)
            self.step_at = None

    async def _receive(self) -> None:
        items = [await self.inbox.get()]
        while not self.inbox.empty():
            items.append(self.inbox.get_nowait())
        self._check_commands()
        work = sorted((i for i in items if i[0] in ("result", "chunk", "retry")), key=lambda i: int(i[1]))
        if any(i[0] == "deadline" for i in items) and self.terminal is None:
            self.abort(time_limit_reason(self.elapsed(), self.settings.max_time_s), "limit")
        for item in work:
            if self.terminal is not None:
                return
            self.step_at = self.ports.clock.now()
            self._process(item)
            self.step_at = None
            self._check_commands()

    def _process(self, item: InboxItem) -> None:
        kind, token, frame, node_id = item[0], item[1], item[2], item[3]
        if frame.finished or frame.running.get(node_id) != token:
            return  # from a cancelled task or frame
        if kind == "result":
            self.apply(frame, node_id, item[4])
        elif kind == "retry":
            self.fire_retry(frame, node_id, item[4])
        else:
            self._chunk(frame, node_id, item[4], item[5], item[6], item[7])

    def _chunk(
        self, frame: Frame, node_id: str, kind: str, selector: list[str], text: str, final: bool
    ) -> None:
        event_kind = ev.NODE_STREAM_CHUNK if kind == "stream" else ev.NODE_REASONING_CHUNK
        data = {"selector": selector, "chunk": text, "is_final": final}
        self.emit(event_kind, data, frame.refs.get(node_id), frame)
        if frame.parent is not None:
            return  # response nodes inside containers do not stream (§5.6)
        if kind == "stream":
            self.streams.on_stream_chunk(selector, text, final)
            self.flush_streams()
        else:
            self.streams.on_reasoning_chunk(selector, text, final)

    async def _watchdog(self, seconds: float) -> None:
        await self.ports.clock.sleep(max(seconds, 0.0))
        self.inbox.put_nowait(("deadline",))

    async def _read_commands(self) -> None:
        assert self.ports.commands is not None
        async for raw in self.ports.commands:
            command = parse_command(raw)
            if command is not None:
                self.commands.append(command)
                self.inbox.put_nowait(("wake",))

    async def cancel_all(self) -> None:
        pending = [*self.tasks.values(), *self.timers.values(), *self.helpers]
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        self.tasks.clear()
        self.timers.clear()

    # -- commands (§5.11) -----------------------------------------------------------------------

    def _check_commands(self) -> None:
        if isinstance(self.replay, SparseLog):
            return
        if self.replay is not None:
            while self.terminal is None:
                record = self.replay.peek()
                if record is None or record.get("kind") not in COMMAND_MARKERS - {ev.PAUSE_RELEASED}:
                    return
                if record["kind"] == ev.PAUSE_REQUESTED:
                    self._pause(dict(record.get("reason") or {}))
                else:
                    self._update_variables(list(record.get("updates") or []))
            return
        while self.commands and self.terminal is None:
            command = self.commands.popleft()
            if isinstance(command, Abort):
                self.abort("Aborted: " + (command.reason or "User requested abort"), "user")
            elif isinstance(command, Pause):
                self._pause({"TYPE": "scheduled_pause", "message": command.reason})
            else:
                self._update_variables([dict(u) for u in command.updates])

    def _pause(self, reason: dict[str, Any]) -> None:
        self.pausing = True
        self.pause_reasons.append(reason)
        self.emit(ev.PAUSE_REQUESTED, {"reason": reason})

    def _update_variables(self, updates: list[dict[str, Any]]) -> None:
        applied: list[dict[str, Any]] = []
        for update in updates:
            selector = update.get("selector")
            if not isinstance(selector, list | tuple) or len(selector) != 2:
                continue
            ns, name = str(selector[0]), str(selector[1])
            value = update.get("value")
            self.root.pool.set(ns, name, value)
            for frame in self.frames.values():
                if frame.parent is not None and frame.pool.has((ns, name)):
                    frame.pool.set(ns, name, value)
            applied.append({"selector": [ns, name], "value_type": update.get("value_type"), "value": value})
        self.emit(ev.VARIABLES_UPDATED, {"updates": to_jsonable(applied)})

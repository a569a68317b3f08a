"""Runs one try of one segment of a run: claim, lease, drive the engine, record, publish, end.

Order per node: its execution row is committed before its ``node_finished`` is appended, and the
run's terminal status (a conditional update under the run lock: one winner) is committed with its
outbox before ``workflow_finished`` is appended (streaming spec I1, §6.1). Every write is guarded
by the try still being ``active`` and every append carries the try's fence (I7). Recorded node
results are replayed, not re-run, so a recovery try continues where its predecessor died (§8.4).
A stop (control bus, or the heartbeat's fallback) aborts the engine, which cancels its node tasks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from sluice.adapters.sql import repos
from sluice.adapters.sql import segments_repo as segs
from sluice.adapters.sql.tables import SegmentTry, WorkflowNodeExecution, WorkflowRun
from sluice.engine import Engine, EngineSettings, Event, Ports
from sluice.engine import events as ev
from sluice.engine.graph import CompiledGraph
from sluice.engine.llm import ModelProvider
from sluice.engine.ports import (
    CodeExecutor,
    ConversationMemory,
    DocumentExtractor,
    FileStore,
    HttpTransport,
    HumanInputService,
)
from sluice.runtime.clock import SystemClock, UuidIds
from sluice.runtime.dify_events import DifyMapper, Mapped, RunFacts, node_lost, workflow_paused
from sluice.runtime.facts import aware, naive, run_facts, run_input
from sluice.runtime.graphs import GraphCache, GraphLoadError
from sluice.runtime.lease import Lease
from sluice.runtime.ports import ControlBus, EventLog, JobQueue
from sluice.runtime.reaper import RUN_TRY_JOB
from sluice.runtime.replay import IdMap, replay_graph
from sluice.runtime.terminal import Ending, Outcome, commit_end, outbox_item, publish_outbox
from sluice.runtime.writer import RunEventWriter

__all__ = ["LeaseLost", "RuntimeConfig", "SegmentRunner", "aware", "naive", "run_facts", "run_input"]

log = logging.getLogger("sluice.runtime")

STOPPED_BY_USER = "Stopped by user"
USE_ENGINE_RESUME = True  # prefer Engine.resume (engine spec §5.12) whenever the engine has it


class PauseHook(Protocol):
    """Human input's part of the pause commit (human-input.md §2.3), inside its transaction: the
    events to publish (``human_input_required`` ×N, ``workflow_paused``), then a resume try when a
    form was answered before the commit."""

    async def pause_events(
        self,
        session: AsyncSession,
        run: WorkflowRun,
        facts: RunFacts,
        outputs: Any,
        reasons: list[Any],
    ) -> list[Mapped]: ...

    async def after_pause(self, session: AsyncSession, run_id: str) -> SegmentTry | None: ...

    def committed(self, run_id: str) -> None:
        """After the pause commit and publish: side effects (the form emails)."""
        ...


class LeaseLost(Exception):
    """This try no longer owns its segment: nothing more may be written or appended."""


@dataclass(frozen=True, slots=True)
class RuntimeConfig:
    lease_ttl: float = 15
    heartbeat: float = 5
    stop_grace: float = 0.5
    max_event_bytes: int = 1 << 20
    batch_max_events: int = 256
    batch_max_bytes: int = 1 << 20
    buffer_max_events: int = 10_000
    retry_max_seconds: float = 30

    @classmethod
    def from_settings(cls, st: Any) -> RuntimeConfig:
        return cls(
            lease_ttl=st.lease_ttl_seconds,
            heartbeat=st.heartbeat_interval_seconds,
            stop_grace=st.stop_cancel_grace_seconds,
            max_event_bytes=st.event_max_bytes,
            batch_max_events=st.append_batch_max_events,
            batch_max_bytes=st.append_batch_max_bytes,
            buffer_max_events=st.append_buffer_max_events,
            retry_max_seconds=st.append_retry_max_seconds,
        )


@dataclass(eq=False)
class _Try:
    claimed: segs.Claimed
    task: asyncio.Task[Any] | None
    facts: RunFacts
    writer: RunEventWriter | None = None
    engine: Engine | None = None
    stop_requested: bool = False
    lost: bool = False

    @property
    def try_id(self) -> str:
        return self.claimed.try_.id

    @property
    def run_id(self) -> str:
        return self.claimed.run.id

    def lose(self) -> None:
        """Lease lost or fenced: cancel the try; it writes nothing more."""
        if not self.lost:
            self.lost = True
            if self.task is not None:
                self.task.cancel()


class SegmentRunner:
    def __init__(
        self,
        db: async_sessionmaker[AsyncSession],
        event_log: EventLog,
        graphs: GraphCache,
        engine_settings: EngineSettings,
        worker_id: str,
        config: RuntimeConfig | None = None,
        *,
        code: CodeExecutor | None = None,
        http: HttpTransport | None = None,
        files: FileStore | None = None,
        documents: DocumentExtractor | None = None,
        human_input: HumanInputService | None = None,
        pause_hook: PauseHook | None = None,
        models: ModelProvider | None = None,
        memory: ConversationMemory | None = None,
    ) -> None:
        self._db = db
        self._log = event_log
        self._graphs = graphs
        self._settings = engine_settings
        self._worker_id = worker_id
        self._config = config or RuntimeConfig()
        self._ports = Ports(
            SystemClock(),
            UuidIds(),
            code=code,
            http=http,
            files=files,
            documents=documents,
            human_input=human_input,
            models=models,
            memory=memory,
        )
        self._pause_hook = pause_hook
        self.queue: JobQueue | None = None  # set by the composition root (resumes after a pause)
        self._tries: dict[str, _Try] = {}  # by segment id
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def active_runs(self) -> int:
        return len(self._tries)

    async def drained(self, timeout: float) -> bool:
        """Wait up to ``timeout`` for the running tries to end (graceful shutdown)."""
        try:
            async with asyncio.timeout(timeout):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True

    def holds(self, try_id: str) -> bool:
        """Whether this process runs ``try_id`` (its own reaper never takes a live try away)."""
        return any(t.try_id == try_id for t in self._tries.values())

    def describe(self) -> str:
        return ", ".join(sorted(t.run_id for t in self._tries.values())) or "nothing"

    # -- stop ---------------------------------------------------------------------------------------

    def stop_segment(self, segment_id: str) -> bool:
        """Deliver a stop for a segment this process runs (any of its tries); others are ignored."""
        found = self._tries.get(segment_id)
        if found is None:
            return False
        self._stop(found)
        return True

    def stop(self, run_id: str) -> bool:
        return any(
            self.stop_segment(t.claimed.segment.id) for t in list(self._tries.values()) if t.run_id == run_id
        )

    def _stop(self, t: _Try) -> None:
        if t.stop_requested:
            return
        t.stop_requested = True
        if t.engine is not None:
            t.engine.abort(STOPPED_BY_USER)

    async def watch(self, control: ControlBus) -> None:
        """Consume stop messages from the control bus for as long as the process lives."""
        while True:
            try:
                async for message in control.subscribe():
                    if message.get("type") != "stop":
                        continue
                    segment_id = message.get("segment_id")
                    if isinstance(segment_id, str):
                        self.stop_segment(segment_id)
                    elif isinstance(message.get("run_id"), str):
                        self.stop(message["run_id"])
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("control channel failed; resubscribing")
            await asyncio.sleep(1)

    # -- one try ------------------------------------------------------------------------------------

    async def run_try(self, try_id: str) -> None:
        async with self._db() as session, session.begin():
            claimed = await segs.claim(session, try_id, self._worker_id, self._config.lease_ttl)
        if claimed is None:
            log.info("try %s: nothing to claim", try_id)
            return
        t = _Try(claimed, asyncio.current_task(), run_facts(claimed.run, claimed.segment.number))
        self._tries[claimed.segment.id] = t
        self._idle.clear()
        cfg = self._config
        t.writer = RunEventWriter(
            self._log,
            t.run_id,
            claimed.try_.fence,
            max_event_bytes=cfg.max_event_bytes,
            batch_max_events=cfg.batch_max_events,
            batch_max_bytes=cfg.batch_max_bytes,
            buffer_max_events=cfg.buffer_max_events,
            retry_max_seconds=cfg.retry_max_seconds,
            on_fenced=t.lose,
        )
        lease = Lease(
            self._db,
            self._log,
            try_id=try_id,
            run_id=t.run_id,
            ttl=cfg.lease_ttl,
            interval=cfg.heartbeat,
            on_lost=t.lose,
            on_stop=lambda: self._stop(t),
        )
        lease.start()
        try:
            try:
                await self._log.raise_fence(t.run_id, claimed.try_.fence)
            except Exception as exc:  # appends carry the fence anyway
                log.warning("run %s: raising the fence failed (%s)", t.run_id, exc)
            await self._execute(t)
        except asyncio.CancelledError:
            if t.lost:
                return
            await asyncio.shield(self._release(t))  # shutting down: hand the try back
            raise
        except LeaseLost:
            log.warning("try %s: lease lost; stopped writing", try_id)
        finally:
            self._tries.pop(claimed.segment.id, None)
            if not self._tries:
                self._idle.set()
            await lease.close()
            await t.writer.close()

    async def _release(self, t: _Try) -> None:
        try:
            async with self._db() as session, session.begin():
                await segs.release_lease(session, t.try_id)
        except Exception as exc:
            log.warning("try %s: releasing the lease failed (%s); it expires on its own", t.try_id, exc)

    async def _execute(self, t: _Try) -> None:
        run, segment = t.claimed.run, t.claimed.segment
        if segment.stop_requested_at is not None or t.stop_requested:
            await self._end(t, Ending("stopped", STOPPED_BY_USER))
            return
        try:
            async with self._db() as session:
                workflow = await repos.get_workflow(session, run.workflow_id)
            if workflow is None:
                raise GraphLoadError("The published workflow cannot be loaded: it no longer exists")
            await self._drive(t, self._graphs.get(workflow))
        except (LeaseLost, asyncio.CancelledError):
            raise
        except GraphLoadError as exc:
            await self._end(t, Ending("failed", str(exc)))
        except Exception as exc:
            log.exception("run %s failed in the runtime", t.run_id)
            await self._end(t, Ending("failed", f"Internal error: {type(exc).__name__}: {exc}"))

    async def _drive(self, t: _Try, graph: CompiledGraph) -> None:
        recorded, lost = await self._history(t)
        if lost:
            await self._mark_lost(t, lost)
        inp = run_input(t.claimed.run, graph, t.facts.segment)
        idmap: IdMap | None = None
        events_in: AsyncIterator[Event]
        if recorded and USE_ENGINE_RESUME and hasattr(Engine, "resume"):
            engine = Engine(graph, self._ports, self._settings)
            events_in = engine.resume(inp, recorded)
        elif recorded:
            replaying, idmap = replay_graph(graph, recorded)
            engine = Engine(replaying, self._ports, self._settings)
            events_in = engine.run(inp)
        else:
            engine = Engine(graph, self._ports, self._settings)
            events_in = engine.run(inp)
        mapper = DifyMapper(t.facts)
        t.engine = engine
        if t.stop_requested:
            engine.abort(STOPPED_BY_USER)
        assert t.writer is not None
        try:
            async for event in events_in:
                replayed = idmap.apply(event) if idmap is not None else False
                kind = event.kind
                if kind in ev.RUN_TERMINAL:
                    await self._terminal(t, mapper, event)
                    return
                if kind == ev.NODE_PAUSE_REQUESTED and not replayed:
                    await self._record_paused(t, event)  # resume re-runs it with this execution id
                    continue
                if kind == ev.TEXT_CHUNK and idmap is not None and not idmap.live_started:
                    continue  # already streamed by the try that produced these results
                mapped = mapper.map(event)
                if mapped is None:
                    continue
                if not replayed and kind == ev.NODE_STARTED:
                    await self._record_started(t, event, mapped)
                elif not replayed and kind in ev.NODE_TERMINAL:
                    await self._record_finished(t, event, mapped)
                await t.writer.emit(mapped)
            await self._end(t, Ending("failed", "The engine ended without a terminal event"))
        finally:
            t.engine = None
            await self._close_events(events_in)

    async def _close_events(self, events_in: AsyncIterator[Event]) -> None:
        """Close the engine's stream (it cancels node tasks), waiting at most the stop grace."""
        aclose = getattr(events_in, "aclose", None)
        if aclose is None:
            return
        closing = asyncio.ensure_future(aclose())
        done, _ = await asyncio.wait({closing}, timeout=self._config.stop_grace)
        if not done:
            closing.add_done_callback(lambda f: f.cancelled() or f.exception())

    async def _history(self, t: _Try) -> tuple[list[dict[str, Any]], list[WorkflowNodeExecution]]:
        async with self._db() as session:
            rows = await segs.node_executions(session, t.run_id)
        kept = (*segs.RECORDED_STATUSES, "paused")  # a paused node's pause request keeps its execution id
        recorded = [dict(r.event) for r in rows if r.status in kept and r.event]
        return recorded, [r for r in rows if r.status == "running"]

    async def _mark_lost(self, t: _Try, lost: Sequence[WorkflowNodeExecution]) -> None:
        """Executions a dead try left ``running`` become ``retry`` and run again as new ones."""
        async with self._db() as session, session.begin():
            if not await segs.guard(session, t.try_id):
                raise LeaseLost()
            await segs.set_execution_status(session, [r.id for r in lost], "retry", "worker lost")
        assert t.writer is not None
        for row in lost:
            await t.writer.emit(node_lost(t.facts, row, t.claimed.try_.number))

    # -- recording ----------------------------------------------------------------------------------

    async def _record_started(self, t: _Try, event: Event, mapped: Mapped) -> None:
        assert event.node is not None
        data = mapped.payload["data"]
        run = t.claimed.run
        row = WorkflowNodeExecution(
            id=event.node.execution_id,
            tenant_id=run.tenant_id,
            app_id=run.app_id,
            workflow_id=run.workflow_id,
            workflow_run_id=run.id,
            segment=t.facts.segment,
            index=int(data.get("index") or 0),
            predecessor_node_id=data.get("predecessor_node_id"),
            node_id=event.node.node_id,
            node_type=event.node.node_type,
            title=event.node.title,
            status="running",
            container_id=event.container_id,
            created_at=naive(event.at),
        )
        async with self._db() as session, session.begin():
            if not await segs.guard(session, t.try_id):
                raise LeaseLost()
            if not await segs.rerun_paused_execution(session, row.id, t.facts.segment):
                await segs.add_node_execution(session, row)

    async def _record_paused(self, t: _Try, event: Event) -> None:
        assert event.node is not None
        values = {"status": "paused", "event": event.to_dict()}
        async with self._db() as session, session.begin():
            if not await segs.guard(session, t.try_id):
                raise LeaseLost()
            await segs.finish_node_execution(session, event.node.execution_id, values)

    async def _record_finished(self, t: _Try, event: Event, mapped: Mapped) -> None:
        assert event.node is not None
        data = mapped.payload["data"]
        result = event.data["result"]
        values: dict[str, Any] = {
            "inputs": data.get("inputs"),
            "process_data": data.get("process_data"),
            "outputs": data.get("outputs"),
            "status": data["status"],
            "error": data.get("error"),
            "error_type": result.get("error_type"),
            "elapsed_time": float(data.get("elapsed_time") or 0),
            "execution_metadata": data.get("execution_metadata"),
            "event": event.to_dict(),
            "finished_at": naive(event.at),
        }
        async with self._db() as session, session.begin():
            if not await segs.guard(session, t.try_id):
                raise LeaseLost()
            if not await segs.finish_node_execution(session, event.node.execution_id, values):
                run = t.claimed.run
                row = WorkflowNodeExecution(
                    id=event.node.execution_id,
                    tenant_id=run.tenant_id,
                    app_id=run.app_id,
                    workflow_id=run.workflow_id,
                    workflow_run_id=run.id,
                    segment=t.facts.segment,
                    index=int(data.get("index") or 0),
                    predecessor_node_id=data.get("predecessor_node_id"),
                    node_id=event.node.node_id,
                    node_type=event.node.node_type,
                    title=event.node.title,
                    container_id=event.container_id,
                    created_at=naive(event.at),
                    **values,
                )
                await segs.add_node_execution(session, row)

    # -- endings ------------------------------------------------------------------------------------

    async def _terminal(self, t: _Try, mapper: DifyMapper, event: Event) -> None:
        if event.kind == ev.RUN_PAUSED:
            await self._pause(t, event)
            return
        mapped = mapper.finished(event)
        status = mapped.payload["data"]["status"]
        await self._end(t, Ending(status, payload=mapped, finished_at=event.at))

    async def _end(self, t: _Try, ending: Ending) -> None:
        assert t.writer is not None
        await t.writer.flush(self._config.retry_max_seconds)
        node_error = STOPPED_BY_USER if ending.status == "stopped" else f"Cancelled: the run {ending.status}"
        outcome = Outcome(False)
        async with self._db() as session, session.begin():
            run = await segs.lock_run(session, t.run_id)
            if run is None or not await segs.guard(session, t.try_id):
                raise LeaseLost()
            if run.status in segs.LIVE_STATUSES:
                outcome = await commit_end(session, run, ending, t.facts, node_error=node_error)
            await segs.end_segment(session, t.claimed.segment.id, t.try_id, ending.status)
        if outcome.won:
            await publish_outbox(
                self._db, self._log, t.run_id, outcome, max_event_bytes=self._config.max_event_bytes
            )

    async def _pause(self, t: _Try, event: Event) -> None:
        """End the segment ``paused`` (the outbox holds the pause block), unless a stop came first."""
        assert t.writer is not None
        await t.writer.flush(self._config.retry_max_seconds)
        mapped = workflow_paused(t.facts, event.data.get("outputs"), list(event.data.get("reasons") or []))
        items: tuple[dict[str, Any], ...] = (outbox_item(mapped),)
        filled_at = naive(event.at)
        outcome = Outcome(False)
        resumed: SegmentTry | None = None
        async with self._db() as session, session.begin():
            run = await segs.lock_run(session, t.run_id)
            if run is None or not await segs.guard(session, t.try_id):
                raise LeaseLost()
            segment = await segs.get_segment(session, t.claimed.segment.id)
            if segment is not None and segment.stop_requested_at is not None:
                ending = Ending("stopped", STOPPED_BY_USER, finished_at=event.at)
                outcome = await commit_end(session, run, ending, t.facts, node_error=STOPPED_BY_USER)
                await segs.end_segment(session, t.claimed.segment.id, t.try_id, "stopped")
            else:
                hook = self._pause_hook
                if hook is not None:
                    reasons = list(event.data.get("reasons") or [])
                    shown = await hook.pause_events(session, run, t.facts, event.data.get("outputs"), reasons)
                    items = tuple(outbox_item(m) for m in shown)
                if await segs.pause_run(session, t.run_id, list(items), filled_at):
                    outcome = Outcome(True, run.fence, items, filled_at, None)
                await segs.end_segment(session, t.claimed.segment.id, t.try_id, "paused")
                if hook is not None and outcome.won:
                    resumed = await hook.after_pause(session, t.run_id)
        if outcome.won:
            await publish_outbox(
                self._db, self._log, t.run_id, outcome, max_event_bytes=self._config.max_event_bytes
            )
        if outcome.won and self._pause_hook is not None:
            self._pause_hook.committed(t.run_id)
        if resumed is not None and self.queue is not None:
            try:
                await self.queue.enqueue(resumed.job_id, RUN_TRY_JOB, resumed.id)
            except Exception as exc:  # the reaper enqueues tries that were never enqueued
                log.warning("run %s: enqueueing the resume failed (%s)", t.run_id, exc)

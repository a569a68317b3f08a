"""Runs one segment of one run: claim it, drive the engine, record results, publish events.

Order per node: the node execution row is committed before its ``node_finished`` is appended,
and the run's terminal status is committed (a conditional update: one winner) before its
``workflow_finished`` is appended. Any exception escaping the engine still ends the run.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from sluice.adapters.sql import repos
from sluice.adapters.sql.tables import Workflow, WorkflowNodeExecution, WorkflowRun
from sluice.engine import Engine, EngineSettings, Event, Ports, RunInput
from sluice.engine import events as ev
from sluice.engine.graph import CompiledGraph
from sluice.engine.values import Secret
from sluice.runtime.clock import SystemClock, UuidIds
from sluice.runtime.dify_events import DifyMapper, Mapped, RunFacts, encode, workflow_finished
from sluice.runtime.graphs import GraphCache, GraphLoadError
from sluice.runtime.ports import EventLog, NewEntry

log = logging.getLogger("sluice.runtime")


def aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def naive(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None)


def run_facts(run: WorkflowRun) -> RunFacts:
    return RunFacts(
        run_id=run.id,
        task_id=run.task_id,
        workflow_id=run.workflow_id,
        created_at=aware(run.created_at),
        created_by={"id": run.created_by, "user": (run.inputs or {}).get("sys.user_id")},
        segment=run.segment,
    )


def run_input(run: WorkflowRun, graph: CompiledGraph) -> RunInput:
    stored = run.inputs or {}
    env: dict[str, Any] = {}
    for var in graph.environment_variables:
        value = var.get("value")
        env[str(var.get("name"))] = Secret(value or "") if var.get("value_type") == "secret" else value
    return RunInput(
        run_id=run.id,
        inputs={k: v for k, v in stored.items() if not k.startswith("sys.")},
        system={k[4:]: v for k, v in stored.items() if k.startswith("sys.")},
        env=env,
        segment=run.segment,
    )


async def publish(event_log: EventLog, run_id: str, mapped: Mapped, run_start: bool = False) -> None:
    entry = NewEntry(mapped.event, encode(mapped.payload), mapped.key, mapped.node)
    await event_log.append(run_id, [entry], run_start=run_start)


class SegmentRunner:
    def __init__(
        self,
        db: async_sessionmaker[AsyncSession],
        event_log: EventLog,
        graphs: GraphCache,
        engine_settings: EngineSettings,
        worker_id: str,
    ) -> None:
        self._db = db
        self._log = event_log
        self._graphs = graphs
        self._settings = engine_settings
        self._worker_id = worker_id
        self._ports = Ports(SystemClock(), UuidIds())
        self._active: dict[str, Engine] = {}

    @property
    def active_runs(self) -> int:
        return len(self._active)

    def stop(self, run_id: str) -> bool:
        """Deliver a stop to a run this process is executing; the engine cancels its nodes."""
        engine = self._active.get(run_id)
        if engine is None:
            return False
        engine.abort("Stopped by user")
        return True

    async def run(self, run_id: str) -> None:
        claimed = await self._claim(run_id)
        if claimed is None:
            return
        run, workflow = claimed
        facts = run_facts(run)
        try:
            if run.stop_requested_at is not None:
                await self._end(run, facts, "stopped", "Stopped by user")
                return
            graph = self._graphs.get(workflow)
            await self._drive(run, facts, graph)
        except asyncio.CancelledError:
            await asyncio.shield(self._end(run, facts, "failed", "Run cancelled: worker shutting down"))
            raise
        except GraphLoadError as exc:
            await self._end(run, facts, "failed", str(exc))
        except Exception as exc:
            log.exception("run %s failed in the runtime", run_id)
            await self._end(run, facts, "failed", f"Internal error: {type(exc).__name__}: {exc}")

    async def _claim(self, run_id: str) -> tuple[WorkflowRun, Workflow] | None:
        async with self._db() as session, session.begin():
            stmt = (
                update(WorkflowRun)
                .where(
                    col(WorkflowRun.id) == run_id,
                    col(WorkflowRun.status) == "running",
                    col(WorkflowRun.worker_id).is_(None),
                )
                .values(worker_id=self._worker_id)
            )
            if not (await session.exec(stmt)).rowcount:
                return None
            run = await repos.get_run(session, run_id)
            workflow = await repos.get_workflow(session, run.workflow_id) if run else None
        if run is None or workflow is None:
            return None
        return run, workflow

    async def _drive(self, run: WorkflowRun, facts: RunFacts, graph: CompiledGraph) -> None:
        engine = Engine(graph, self._ports, self._settings)
        mapper = DifyMapper(facts)
        self._active[run.id] = engine
        try:
            async for event in engine.run(run_input(run, graph)):
                if event.kind in ev.RUN_TERMINAL:
                    mapped = mapper.map(event)
                    if mapped is not None:
                        await self._finish(run, mapped, event)
                    return
                mapped = mapper.map(event)
                if mapped is None:
                    continue
                if event.kind in ev.NODE_TERMINAL:
                    await self._record(run, event, mapped)
                await publish(self._log, run.id, mapped)
        finally:
            self._active.pop(run.id, None)

    async def _record(self, run: WorkflowRun, event: Event, mapped: Mapped) -> None:
        assert event.node is not None
        data = mapped.payload["data"]
        result = event.data["result"]
        row = WorkflowNodeExecution(
            id=event.node.execution_id,
            tenant_id=run.tenant_id,
            app_id=run.app_id,
            workflow_id=run.workflow_id,
            workflow_run_id=run.id,
            segment=run.segment,
            index=int(data.get("index") or 0),
            predecessor_node_id=data.get("predecessor_node_id"),
            node_id=event.node.node_id,
            node_type=event.node.node_type,
            title=event.node.title,
            inputs=data.get("inputs"),
            process_data=data.get("process_data"),
            outputs=data.get("outputs"),
            status=data["status"],
            error=data.get("error"),
            error_type=result.get("error_type"),
            elapsed_time=float(data.get("elapsed_time") or 0),
            execution_metadata=data.get("execution_metadata"),
            container_id=event.container_id,
            event=event.to_dict(),
            created_at=naive(datetime.fromisoformat(result["started_at"])),
            finished_at=naive(datetime.fromisoformat(result["finished_at"])),
        )
        async with self._db() as session, session.begin():
            await repos.add_node_execution(session, row)

    async def _finish(self, run: WorkflowRun, mapped: Mapped, event: Event) -> None:
        data = mapped.payload["data"]
        await self._commit_terminal(run, mapped, data, naive(event.at))

    async def _end(self, run: WorkflowRun, facts: RunFacts, status: str, error: str) -> None:
        """End a run outside the engine (stop before start, load failure, runtime exception)."""
        now = datetime.now(UTC)
        mapped = workflow_finished(facts, status=status, outputs={}, error=error, finished_at=now)
        await self._commit_terminal(run, mapped, mapped.payload["data"], naive(now))

    async def _commit_terminal(
        self, run: WorkflowRun, mapped: Mapped, data: dict[str, Any], finished_at: datetime
    ) -> None:
        async with self._db() as session, session.begin():
            won = await repos.finish_run(
                session,
                run.id,
                status=data["status"],
                outputs=data.get("outputs") or {},
                error=data.get("error"),
                finished_at=finished_at,
                elapsed_time=float(data.get("elapsed_time") or 0),
                total_steps=int(data.get("total_steps") or 0),
                total_tokens=int(data.get("total_tokens") or 0),
                exceptions_count=int(data.get("exceptions_count") or 0),
                final_event=mapped.payload,
            )
        if not won:
            return
        await publish(self._log, run.id, mapped)
        async with self._db() as session, session.begin():
            await repos.clear_pending(session, run.id)

"""What the runtime derives from a stored run: its Dify facts and the engine's ``RunInput``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sluice.adapters.sql.tables import WorkflowRun
from sluice.engine import RunInput
from sluice.engine.graph import CompiledGraph
from sluice.engine.values import Secret
from sluice.runtime.dify_events import RunFacts


def aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def naive(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None)


def run_facts(run: WorkflowRun, segment: int | None = None) -> RunFacts:
    return RunFacts(
        run_id=run.id,
        task_id=run.task_id,
        workflow_id=run.workflow_id,
        created_at=aware(run.created_at),
        created_by={"id": run.created_by, "user": (run.inputs or {}).get("sys.user_id")},
        segment=run.segment if segment is None else segment,
    )


def run_input(run: WorkflowRun, graph: CompiledGraph, segment: int | None = None) -> RunInput:
    stored = run.inputs or {}
    env: dict[str, Any] = {}
    for var in graph.environment_variables:
        value = var.get("value")
        env[str(var.get("name"))] = Secret(value or "") if var.get("value_type") == "secret" else value
    return RunInput(
        run_id=run.id,
        inputs={k: v for k, v in stored.items() if not k.startswith(("sys.", "conversation."))},
        system={k[4:]: v for k, v in stored.items() if k.startswith("sys.")},
        env=env,
        # advanced-chat turns store the conversation's variable values as ``conversation.<name>``
        conversation={k[13:]: v for k, v in stored.items() if k.startswith("conversation.")},
        segment=run.segment if segment is None else segment,
    )

"""Engine events → Dify's Workflow App SSE payloads (engine spec §6.4).

The mapper is pure: it knows the run's ids and start time, turns each engine event into zero or
one ``(sse event name, logical key, node execution id, payload)`` and encodes payloads once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sluice.engine import events as ev
from sluice.engine.values import is_file


def encode(payload: dict[str, Any]) -> bytes:
    """Compact JSON, UTF-8, one line (json escapes CR/LF inside strings)."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str).encode()


def epoch(value: datetime | str | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:  # stored timestamps are naive UTC
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp())


def _seconds(start: str, end: str) -> float:
    return round((datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds(), 6)


RUN_STATUS = {
    ev.RUN_SUCCEEDED: "succeeded",
    ev.RUN_PARTIAL_SUCCEEDED: "partial-succeeded",
    ev.RUN_FAILED: "failed",
}


@dataclass(frozen=True, slots=True)
class Mapped:
    event: str
    key: str | None
    node: str | None
    payload: dict[str, Any]


@dataclass(slots=True)
class RunFacts:
    run_id: str
    task_id: str
    workflow_id: str
    created_at: datetime
    created_by: dict[str, Any]
    segment: int = 0


def envelope(facts: RunFacts, event: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"event": event, "task_id": facts.task_id, "workflow_run_id": facts.run_id, "data": data}


def workflow_started(facts: RunFacts, inputs: dict[str, Any], reason: str = "initial") -> Mapped:
    data = {
        "id": facts.run_id,
        "workflow_id": facts.workflow_id,
        "inputs": inputs,
        "created_at": epoch(facts.created_at),
        "reason": reason,
    }
    return Mapped("workflow_started", f"ws:{facts.segment}", None, envelope(facts, "workflow_started", data))


def workflow_finished(
    facts: RunFacts,
    *,
    status: str,
    outputs: dict[str, Any] | None,
    error: str | None,
    finished_at: datetime,
    total_steps: int = 0,
    total_tokens: int = 0,
    exceptions_count: int = 0,
) -> Mapped:
    outputs = outputs or {}
    data = {
        "id": facts.run_id,
        "workflow_id": facts.workflow_id,
        "status": status,
        "outputs": outputs,
        "error": error,
        "elapsed_time": round((finished_at - facts.created_at).total_seconds(), 6),
        "total_tokens": total_tokens,
        "total_steps": total_steps,
        "created_by": facts.created_by,
        "created_at": epoch(facts.created_at),
        "finished_at": epoch(finished_at),
        "exceptions_count": exceptions_count,
        "files": _files(outputs),
    }
    return Mapped("workflow_finished", "wf", None, envelope(facts, "workflow_finished", data))


def _files(outputs: Any) -> list[Any]:
    if not isinstance(outputs, dict):
        return []
    files: list[Any] = []
    for value in outputs.values():
        if is_file(value):
            files.append(value)
        elif isinstance(value, list):
            files.extend(v for v in value if is_file(v))
    return files


def _node_base(event: ev.Event, started_at: Any) -> dict[str, Any]:
    ref = event.node
    assert ref is not None
    return {
        "id": ref.execution_id,
        "node_id": ref.node_id,
        "node_type": ref.node_type,
        "title": ref.title,
        "index": event.data.get("index"),
        "predecessor_node_id": event.data.get("predecessor_node_id"),
        "inputs": {},
        "inputs_truncated": False,
        "created_at": epoch(started_at),
        "extras": {},
        "iteration_id": None,
        "loop_id": None,
    }


class DifyMapper:
    """Stateful only in what a node's ``node_finished`` repeats from its ``node_started``."""

    def __init__(self, facts: RunFacts) -> None:
        self.facts = facts
        self._started: dict[str, dict[str, Any]] = {}

    def map(self, event: ev.Event) -> Mapped | None:
        kind = event.kind
        if kind == ev.NODE_STARTED:
            assert event.node is not None
            base = _node_base(event, event.at)
            self._started[event.node.execution_id] = base
            key = f"ns:{event.node.execution_id}"
            return Mapped("node_started", key, event.node.execution_id, self._env("node_started", base))
        if kind in ev.NODE_TERMINAL or kind == ev.NODE_RETRY:
            return self._node_finished(event)
        if kind == ev.TEXT_CHUNK:
            data = {"text": event.data["text"], "from_variable_selector": event.data["selector"]}
            return Mapped("text_chunk", None, None, self._env("text_chunk", data))
        if kind == ev.RUN_STARTED:
            return workflow_started(
                self.facts, event.data.get("inputs") or {}, event.data.get("reason", "initial")
            )
        if kind in ev.RUN_TERMINAL and kind != ev.RUN_PAUSED:
            return self.finished(event)
        return None

    def _env(self, name: str, data: dict[str, Any]) -> dict[str, Any]:
        return envelope(self.facts, name, data)

    def _node_finished(self, event: ev.Event) -> Mapped:
        ref = event.node
        assert ref is not None
        result = event.data["result"]
        base = dict(self._started.get(ref.execution_id) or _node_base(event, result["started_at"]))
        metadata = {k: v for k, v in (result.get("metadata") or {}).items() if v is not None}
        base.update(
            inputs=result.get("inputs") or {},
            process_data=result.get("process_data") or {},
            process_data_truncated=False,
            outputs=result.get("outputs") or {},
            outputs_truncated=False,
            status={"node_retry": "retry"}.get(event.kind, result["status"]),
            error=result.get("error"),
            elapsed_time=_seconds(result["started_at"], result["finished_at"]),
            execution_metadata=metadata,
            finished_at=epoch(result["finished_at"]),
            files=_files(result.get("outputs")),
        )
        if event.kind == ev.NODE_RETRY:
            base["retry_index"] = event.data["retry_index"]
            key = f"nr:{ref.execution_id}:{event.data['retry_index']}"
            return Mapped("node_retry", key, ref.execution_id, self._env("node_retry", base))
        return Mapped(
            "node_finished", f"nf:{ref.execution_id}", ref.execution_id, self._env("node_finished", base)
        )

    def finished(self, event: ev.Event) -> Mapped:
        data = event.data
        if event.kind == ev.RUN_ABORTED:
            stopped = data.get("cause") == "user"
            status = "stopped" if stopped else "failed"
            error = "Stopped by user" if stopped else data.get("reason")
        else:
            status = RUN_STATUS[event.kind]
            error = data.get("error")
        return workflow_finished(
            self.facts,
            status=status,
            outputs=data.get("outputs") if status in ("succeeded", "partial-succeeded") else {},
            error=error,
            finished_at=event.at,
            total_steps=int(data.get("total_steps", 0)),
            total_tokens=int(data.get("total_tokens", 0)),
            exceptions_count=int(data.get("exceptions_count", 0)),
        )

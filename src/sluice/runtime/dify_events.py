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
        "iteration_id": event.container_id if ref.container_type == "iteration" else None,
        "loop_id": event.container_id if ref.container_type == "loop" else None,
    }


CONTAINER_NODE_TYPES = frozenset({"iteration", "loop"})


class DifyMapper:
    """Stateful only in what a node's ``node_finished`` repeats from its ``node_started``."""

    def __init__(self, facts: RunFacts) -> None:
        self.facts = facts
        self._started: dict[str, dict[str, Any]] = {}

    def map(self, event: ev.Event) -> Mapped | None:
        kind = event.kind
        node = event.node
        if node is not None and node.node_type in CONTAINER_NODE_TYPES:
            # §6.4: iteration and loop nodes show as iteration_*/loop_* events, never node_*.
            return self._container(event) if kind in ev.CONTAINER_EVENTS else None
        if kind == ev.REASONING_CHUNK:
            data = {"reasoning": event.data["text"], "node_id": event.data["attributed_node_id"]}
            data["is_final"] = event.data["is_final"]
            return Mapped("reasoning_chunk", None, None, self._env("reasoning_chunk", data))
        if kind in (ev.HUMAN_INPUT_FORM_FILLED, ev.HUMAN_INPUT_FORM_TIMEOUT) and node is not None:
            data = {"node_id": node.node_id, "node_title": node.title, **event.data}
            return Mapped(kind, f"{kind}:{node.execution_id}", node.execution_id, self._env(kind, data))
        if kind == ev.NODE_STARTED:
            assert event.node is not None
            base = _node_base(event, event.at)
            self._started[event.node.execution_id] = base
            key = f"ns:{event.node.execution_id}"
            if self.facts.segment:  # a paused node re-runs on resume: a new node_started (human input)
                key = f"{key}:{self.facts.segment}"
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

    def _container(self, event: ev.Event) -> Mapped:
        """``iteration_started|next|completed`` and ``loop_started|next|completed`` (§6.4)."""
        ref = event.node
        assert ref is not None
        family = ref.node_type
        data: dict[str, Any] = {
            "id": ref.node_id,
            "node_id": ref.node_id,
            "node_type": ref.node_type,
            "title": ref.title,
            "created_at": epoch(event.at),
            "extras": {},
        }
        if event.kind in (ev.ITERATION_STARTED, ev.LOOP_STARTED):
            self._started[ref.execution_id] = {"at": event.at}
            data.update(inputs=event.data.get("inputs") or {}, inputs_truncated=False)
            data["metadata"] = event.data.get("metadata") or {}
            name, key = f"{family}_started", f"cs:{ref.execution_id}"
        elif event.kind in (ev.ITERATION_NEXT, ev.LOOP_NEXT):
            data["index"] = event.data["index"]
            if family == "loop":
                data["pre_loop_output"] = {}
            name, key = f"{family}_next", f"cn:{ref.execution_id}:{event.data['index']}"
        else:
            started = self._started.get(ref.execution_id, {}).get("at", event.at)
            metadata = event.data.get("metadata") or {}
            data.update(
                created_at=epoch(started),
                outputs=event.data.get("outputs") or {},
                outputs_truncated=False,
                inputs=event.data.get("inputs") or {},
                inputs_truncated=False,
                status="failed" if event.kind in (ev.ITERATION_FAILED, ev.LOOP_FAILED) else "succeeded",
                error=event.data.get("error"),
                elapsed_time=round((event.at - started).total_seconds(), 6),
                total_tokens=int(metadata.get("total_tokens") or 0),
                execution_metadata=metadata,
                finished_at=epoch(event.at),
                steps=event.data.get("steps"),
            )
            name, key = f"{family}_completed", f"cc:{ref.execution_id}"
        return Mapped(name, key, ref.execution_id, self._env(name, data))

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


# -- events the runtime and the stream service build outside the engine ----------------------------

BULKY = ("inputs", "process_data", "outputs")


def encode_bounded(payload: dict[str, Any], max_bytes: int) -> bytes:
    """``encode``, but above ``max_bytes`` the bulky node fields are nulled with Dify's
    ``*_truncated`` flags (SQL keeps the full values)."""
    data = encode(payload)
    if len(data) <= max_bytes or not isinstance(payload.get("data"), dict):
        return data
    inner = dict(payload["data"])
    for name in BULKY:
        if name in inner:
            inner[name] = None
            inner[f"{name}_truncated"] = True
    return encode({**payload, "data": inner})


def flagged(payload: dict[str, Any]) -> dict[str, Any]:
    """A synthesized event (snapshot, probe, re-sent pause block): top-level ``"snapshot": true``."""
    return {**payload, "snapshot": True}


def workflow_paused(facts: RunFacts, outputs: dict[str, Any] | None, reasons: list[Any]) -> Mapped:
    data = {
        "workflow_run_id": facts.run_id,
        "paused_nodes": [],
        "outputs": outputs or {},
        "reasons": reasons,
        "status": "paused",
        "created_at": epoch(facts.created_at),
        "elapsed_time": 0,
        "total_tokens": 0,
        "total_steps": 0,
    }
    return Mapped("workflow_paused", f"wp:{facts.segment}", None, envelope(facts, "workflow_paused", data))


def node_started_payload(facts: RunFacts, row: Any) -> dict[str, Any]:
    """``node_started`` rebuilt from a stored node execution (snapshots)."""
    data = {
        "id": row.id,
        "node_id": row.node_id,
        "node_type": row.node_type,
        "title": row.title,
        "index": row.index,
        "predecessor_node_id": row.predecessor_node_id,
        "inputs": None,
        "inputs_truncated": True,
        "created_at": epoch(row.created_at),
        "extras": {},
        "iteration_id": None,
        "loop_id": None,
    }
    return envelope(facts, "node_started", data)


def node_finished_payload(
    facts: RunFacts, row: Any, *, status: str | None = None, error: str | None = None, bulky: bool = False
) -> dict[str, Any]:
    """``node_finished`` from a stored node execution: for snapshots (bulky fields null) and for
    nodes a stop or a crash ended (``status`` given)."""
    payload = node_started_payload(facts, row)
    data = payload["data"]
    finished = row.finished_at or row.created_at
    data.update(
        inputs=row.inputs if bulky else None,
        inputs_truncated=not bulky,
        process_data=row.process_data if bulky else None,
        process_data_truncated=not bulky,
        outputs=row.outputs if bulky else None,
        outputs_truncated=not bulky,
        status=status or row.status,
        error=error if status else row.error,
        elapsed_time=row.elapsed_time,
        execution_metadata=row.execution_metadata or {},
        finished_at=epoch(finished),
        files=[],
    )
    payload["event"] = "node_finished"
    return payload


def node_stopped(facts: RunFacts, row: Any, error: str, finished_at: datetime) -> Mapped:
    payload = node_finished_payload(facts, row, status="stopped", error=error, bulky=True)
    started = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
    payload["data"].update(
        outputs={},
        outputs_truncated=False,
        process_data={},
        process_data_truncated=False,
        elapsed_time=round((finished_at - started).total_seconds(), 6),
        finished_at=epoch(finished_at),
    )
    return Mapped("node_finished", f"nf:{row.id}", row.id, payload)


def node_lost(facts: RunFacts, row: Any, try_number: int) -> Mapped:
    """``node_retry`` for an execution its worker died in (spec §8.4): it runs again as a new one."""
    payload = node_finished_payload(facts, row, status="retry", error="worker lost", bulky=True)
    payload["event"] = "node_retry"
    payload["data"]["retry_index"] = try_number
    return Mapped("node_retry", f"nr:{row.id}:lost", row.id, payload)

"""Replaying recorded events (§5.12): the apply logic re-runs against a recorded log.

On resume the engine runs its ordinary loop with two differences: every event it would emit must
equal the next recorded one (kind, node, frame), which it then takes instead of emitting, and
where the live loop would wait for a task, a timer or a command it takes the next *marker* of
the log (a node's terminal event, a retry, a chunk, a command echo) and applies what that marker
records. No port is called; ids and timestamps come from the log. The state reached is exactly
the state the original segment had, so finished nodes never re-execute.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sluice.engine import events as ev
from sluice.engine.nodes.base import FAILED, PAUSED, NodeResult

ENVELOPE = frozenset(
    {
        "seq",
        "kind",
        "run_id",
        "segment",
        "at",
        "container_id",
        "frame_id",
        "execution_id",
        "node_id",
        "node_type",
        "node_version",
        "title",
        "container_type",
        "frame_index",
    }
)
TASK_MARKERS = frozenset(
    {
        *ev.NODE_TERMINAL,
        ev.NODE_RETRY,
        ev.NODE_STREAM_CHUNK,
        ev.NODE_REASONING_CHUNK,
        ev.NODE_PAUSE_REQUESTED,
    }
)
COMMAND_MARKERS = frozenset({ev.PAUSE_REQUESTED, ev.VARIABLES_UPDATED, ev.PAUSE_RELEASED})
NODE_SIDE_EVENTS = frozenset({ev.HUMAN_INPUT_FORM_FILLED, ev.HUMAN_INPUT_FORM_TIMEOUT})


class ResumeError(Exception):
    """A recorded log cannot be resumed on this graph (``code``: ``resume.graph_mismatch``,
    ``resume.replay_mismatch``, ``resume.run_finished``, ``resume.invalid_log``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def payload(record: Mapping[str, Any]) -> dict[str, Any]:
    """An event's data without its envelope."""
    return {k: v for k, v in record.items() if k not in ENVELOPE}


class RecordedLog:
    sparse = False

    def __init__(self, events: Sequence[Mapping[str, Any]]) -> None:
        self.events = list(events)
        self.pos = 0
        self._at: dict[int, datetime] = {}
        self.last_at: datetime | None = None

    @property
    def exhausted(self) -> bool:
        return self.pos >= len(self.events)

    def peek(self, offset: int = 0) -> Mapping[str, Any] | None:
        index = self.pos + offset
        return self.events[index] if index < len(self.events) else None

    def at(self, index: int) -> datetime:
        value = self._at.get(index)
        if value is None:
            value = self._at[index] = datetime.fromisoformat(str(self.events[index]["at"]))
        return value

    def now(self) -> datetime:
        """The time of the event about to be matched (the live loop would read the clock here)."""
        if self.pos < len(self.events):
            return self.at(self.pos)
        assert self.last_at is not None
        return self.last_at

    def take(self, kind: str, node_id: str | None, frame_id: str) -> Mapping[str, Any]:
        record = self.peek()
        if record is None:
            raise ResumeError("resume.replay_mismatch", f"replay produced {kind} after the end of the log")
        if (
            record.get("kind") != kind
            or record.get("frame_id", "root") != frame_id
            or (node_id is not None and record.get("node_id") != node_id)
        ):
            raise ResumeError(
                "resume.replay_mismatch",
                f"replay produced {kind} of {node_id or '-'} in {frame_id} where the log has "
                f"{record.get('kind')} of {record.get('node_id') or '-'} in {record.get('frame_id')} "
                f"(seq {record.get('seq')})",
            )
        self.last_at = self.at(self.pos)
        self.pos += 1
        return record

    def next_marker(self, kinds: frozenset[str]) -> int | None:
        for index in range(self.pos, len(self.events)):
            if self.events[index].get("kind") in kinds:
                return index
        return None

    def side_events(self, marker: int, execution_id: str) -> list[Mapping[str, Any]]:
        """Events of ``execution_id`` between the cursor and ``marker`` that its result carries."""
        return [
            record
            for record in self.events[self.pos : marker]
            if record.get("execution_id") == execution_id
            and record.get("kind") in NODE_SIDE_EVENTS | {ev.NODE_VARIABLE_UPDATED}
        ]


def result_from_record(record: Mapping[str, Any], side: list[Mapping[str, Any]]) -> NodeResult:
    """The node result an arrival carried, rebuilt from its recorded terminal (or retry) event.

    An exception is rebuilt as the failure it came from: applying it runs the same error
    strategy again and reaches the same recorded result.
    """
    kind = record.get("kind")
    if kind == ev.NODE_PAUSE_REQUESTED:
        return NodeResult(status=PAUSED, pause=dict(record.get("reason") or {}))
    raw = dict(record.get("result") or {})
    status = str(raw.get("status") or FAILED)
    if kind == ev.NODE_EXCEPTION or kind == ev.NODE_RETRY:
        status = FAILED
    result = NodeResult(
        status=status,
        inputs=dict(raw.get("inputs") or {}),
        process_data=dict(raw.get("process_data") or {}),
        outputs=dict(raw.get("outputs") or {}),
        metadata=dict(raw.get("metadata") or {}) if kind != ev.NODE_EXCEPTION else {},
        llm_usage=raw.get("llm_usage"),
        edge_source_handle=str(raw.get("edge_source_handle") or "source"),
        error=raw.get("error"),
        error_type=raw.get("error_type"),
    )
    for item in side:
        if item.get("kind") == ev.NODE_VARIABLE_UPDATED:
            selector = item.get("selector") or ["", ""]
            result.updates.append(
                ((str(selector[0]), str(selector[1])), item.get("value"), str(item.get("value_type")))
            )
        else:
            result.events.append((str(item.get("kind")), payload(item)))
    return result


class SparseLog(RecordedLog):
    """A log of node results only (terminal events, and ``node_pause_requested`` of paused
    executions), as the runtime's node-result table keeps them.

    Replay against it is lenient: the emitted events are not matched (and not re-emitted),
    finished nodes take their recorded results in ``seq`` order, and nodes with no record run
    again, live, once the records are used up."""

    sparse = True

    def __init__(self, events: Sequence[Mapping[str, Any]]) -> None:
        ordered = sorted(
            (e for e in events if e.get("kind") in RESULT_KINDS), key=lambda e: int(e.get("seq") or 0)
        )
        super().__init__(ordered)
        self.reserved: dict[tuple[str, str], int] = {}
        self.arrived: set[int] = set()
        self._free: dict[tuple[str, str], list[int]] = {}
        self._children: dict[str, list[str]] = {}
        for index, record in enumerate(self.events):
            key = (str(record.get("frame_id", "root")), str(record.get("node_id")))
            self._free.setdefault(key, []).append(index)
            container = str(record.get("container_id") or "")
            if container:
                owner = str(record.get("frame_id", "")).split(":", 1)[0]
                known = self._children.setdefault(container, [])
                if owner not in known:
                    known.append(owner)
        self._current = 0

    def now(self) -> datetime:
        if self.events:
            return self.at(min(self._current, len(self.events) - 1))
        return datetime.fromtimestamp(0).astimezone()

    def take(self, kind: str, node_id: str | None, frame_id: str) -> Mapping[str, Any]:
        return {}

    def execution_for(self, frame_id: str, node_id: str, container: bool) -> str | None:
        """The recorded execution id of this node in this frame, or ``None`` (run it live)."""
        free = self._free.get((frame_id, node_id))
        if free:
            index = free.pop(0)
            self.reserved[(frame_id, node_id)] = index
            execution_id = str(self.events[index].get("execution_id"))
            if execution_id in self._children.get(node_id, []):
                self._children[node_id].remove(execution_id)
            return execution_id
        if container and self._children.get(node_id):
            return self._children[node_id].pop(0)
        return None

    def arrival(self, running: set[tuple[str, str]]) -> int | None:
        """The earliest recorded result of a node that is running in the replay."""
        best: int | None = None
        for key, index in self.reserved.items():
            if index not in self.arrived and key in running and (best is None or index < best):
                best = index
        if best is not None:
            self.arrived.add(best)
            self._current = best
        return best

    @property
    def last_seq(self) -> int:
        return max((int(e.get("seq") or 0) for e in self.events), default=0)


RESULT_KINDS = frozenset({*ev.NODE_TERMINAL, ev.NODE_PAUSE_REQUESTED})

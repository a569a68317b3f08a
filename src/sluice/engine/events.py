"""Engine events (§6): one envelope, a kind and a payload.

``Event.to_dict()`` is the canonical, JSON-able form: golden logs are made of it, the runtime
records it, and ``Engine.resume`` replays a list of such dicts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

RUN_STARTED = "run_started"
RUN_SUCCEEDED = "run_succeeded"
RUN_PARTIAL_SUCCEEDED = "run_partial_succeeded"
RUN_FAILED = "run_failed"
RUN_ABORTED = "run_aborted"
RUN_PAUSED = "run_paused"
RUN_TERMINAL = frozenset({RUN_SUCCEEDED, RUN_PARTIAL_SUCCEEDED, RUN_FAILED, RUN_ABORTED, RUN_PAUSED})

EDGE_TAKEN = "edge_taken"
EDGE_SKIPPED = "edge_skipped"

NODE_STARTED = "node_started"
NODE_RETRY = "node_retry"
NODE_SUCCEEDED = "node_succeeded"
NODE_EXCEPTION = "node_exception"
NODE_FAILED = "node_failed"
NODE_TERMINAL = frozenset({NODE_SUCCEEDED, NODE_EXCEPTION, NODE_FAILED})
NODE_STREAM_CHUNK = "node_stream_chunk"
NODE_REASONING_CHUNK = "node_reasoning_chunk"
NODE_VARIABLE_UPDATED = "node_variable_updated"
NODE_PAUSE_REQUESTED = "node_pause_requested"
HUMAN_INPUT_FORM_FILLED = "human_input_form_filled"
HUMAN_INPUT_FORM_TIMEOUT = "human_input_form_timeout"

ITERATION_STARTED = "iteration_started"
ITERATION_NEXT = "iteration_next"
ITERATION_SUCCEEDED = "iteration_succeeded"
ITERATION_FAILED = "iteration_failed"
LOOP_STARTED = "loop_started"
LOOP_NEXT = "loop_next"
LOOP_SUCCEEDED = "loop_succeeded"
LOOP_FAILED = "loop_failed"
CONTAINER_EVENTS = frozenset(
    {
        ITERATION_STARTED,
        ITERATION_NEXT,
        ITERATION_SUCCEEDED,
        ITERATION_FAILED,
        LOOP_STARTED,
        LOOP_NEXT,
        LOOP_SUCCEEDED,
        LOOP_FAILED,
    }
)

# Sluice-only: the response-stream filter's output, frame ends and command echoes (for replay).
TEXT_CHUNK = "text_chunk"
REASONING_CHUNK = "reasoning_chunk"
FRAME_FINISHED = "frame_finished"
VARIABLES_UPDATED = "variables_updated"
PAUSE_REQUESTED = "pause_requested"
"""A ``pause`` command was applied (its reason joins ``run_paused.reasons``)."""
PAUSE_RELEASED = "pause_released"
"""The pause gate answered: these pause-requesting executions re-run in this segment."""


@dataclass(frozen=True, slots=True)
class NodeRef:
    execution_id: str
    node_id: str
    node_type: str
    node_version: str
    title: str
    container_type: str = ""
    frame_index: int | None = None


@dataclass(slots=True)
class Event:
    seq: int
    kind: str
    run_id: str
    segment: int
    at: datetime
    data: dict[str, Any] = field(default_factory=dict)
    node: NodeRef | None = None
    container_id: str = ""
    frame_id: str = "root"

    def to_dict(self) -> dict[str, Any]:
        """The canonical JSON-able form (golden logs, recorded results, replay)."""
        out: dict[str, Any] = {
            "seq": self.seq,
            "kind": self.kind,
            "run_id": self.run_id,
            "segment": self.segment,
            "at": self.at.isoformat(),
            "container_id": self.container_id,
            "frame_id": self.frame_id,
        }
        node = self.node
        if node is not None:
            out["execution_id"] = node.execution_id
            out["node_id"] = node.node_id
            out["node_type"] = node.node_type
            out["node_version"] = node.node_version
            out["title"] = node.title
            out["container_type"] = node.container_type
            out["frame_index"] = node.frame_index
        out.update(self.data)
        return out

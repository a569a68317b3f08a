"""Engine events (§6): one envelope, a kind and a payload."""

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
NODE_VARIABLE_UPDATED = "node_variable_updated"

TEXT_CHUNK = "text_chunk"


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
        """The canonical JSON-able form (golden logs, recorded results)."""
        out: dict[str, Any] = {
            "seq": self.seq,
            "kind": self.kind,
            "run_id": self.run_id,
            "segment": self.segment,
            "at": self.at.isoformat(),
            "container_id": self.container_id,
            "frame_id": self.frame_id,
        }
        if self.node is not None:
            n = self.node
            out.update(
                execution_id=n.execution_id,
                node_id=n.node_id,
                node_type=n.node_type,
                node_version=n.node_version,
                title=n.title,
                container_type=n.container_type,
                frame_index=n.frame_index,
            )
        out.update(self.data)
        return out

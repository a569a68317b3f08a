"""Frames (§5.1, §5.5): the root graph, one iteration item or one loop round.

A frame owns its pool and the states of its nodes and edges. A node of a frame is *queued*
(in the run's ready queue), *running* (a task, a container or a retry timer), *deferred*
(held by a pause) or decided; the frame is complete when none is queued, running or deferred.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sluice.engine.events import NodeRef
from sluice.engine.pool import VariablePool

if TYPE_CHECKING:
    from sluice.engine.containers import ContainerRun

READY, RUNNING, DONE = "ready", "running", "done"
TAKEN, SKIPPED = "taken", "skipped"
ROOT = "root"


class Frame:
    __slots__ = (
        "container",
        "container_id",
        "container_type",
        "containers",
        "deferred",
        "edge_state",
        "error",
        "finished",
        "frame_id",
        "index",
        "loop_end",
        "node_started",
        "node_state",
        "outputs",
        "parent",
        "pool",
        "predecessor",
        "queued",
        "refs",
        "retries",
        "retrying",
        "root_id",
        "running",
        "started_at",
    )

    def __init__(
        self,
        frame_id: str,
        pool: VariablePool,
        root_id: str,
        *,
        parent: Frame | None = None,
        container: ContainerRun | None = None,
        container_id: str = "",
        container_type: str = "",
        index: int | None = None,
        started_at: datetime | None = None,
    ) -> None:
        self.frame_id = frame_id
        self.pool = pool
        self.root_id = root_id
        self.parent = parent
        self.container = container
        self.container_id = container_id
        self.container_type = container_type
        self.index = index
        self.started_at = started_at
        self.node_state: dict[str, str] = {}
        self.node_started: dict[str, datetime] = {}
        self.edge_state: dict[str, str] = {}
        self.predecessor: dict[str, str | None] = {root_id: None}
        self.refs: dict[str, NodeRef] = {}
        self.retries: dict[str, int] = {}
        self.retrying: set[str] = set()
        """Nodes whose next start is a retry attempt (no new ``node_started``)."""
        self.queued = 0
        self.running: dict[str, int] = {}
        """Node id → token of its current task, container run or retry timer."""
        self.deferred: list[str] = []
        self.containers: dict[str, ContainerRun] = {}
        self.outputs: dict[str, Any] = {}
        """Response outputs merged in this frame (the run outputs, for the root)."""
        self.error: str | None = None
        self.finished = False
        self.loop_end = False
        """A ``loop-end`` completed in this loop round."""

    @property
    def is_root(self) -> bool:
        return self.parent is None

    @property
    def complete(self) -> bool:
        return not self.finished and self.queued == 0 and not self.running and not self.deferred

    def __repr__(self) -> str:
        return f"Frame({self.frame_id!r})"

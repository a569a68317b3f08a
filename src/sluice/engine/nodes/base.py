"""What every node implementation provides, and the result it hands to the apply loop."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar

from sluice.engine.graph import NodeSpec

if TYPE_CHECKING:
    from sluice.engine.pool import VariablePool
    from sluice.engine.ports import Ports

SUCCEEDED = "succeeded"
FAILED = "failed"
EXCEPTION = "exception"
PAUSED = "paused"
"""Not a terminal status: the node asks the run to pause and re-runs on resume (§4.13)."""

Loc = tuple[str | int, ...]
Problems = list[tuple[Loc, str]]


@dataclass(slots=True)
class NodeResult:
    status: str = SUCCEEDED
    inputs: dict[str, Any] = field(default_factory=dict)
    process_data: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    llm_usage: dict[str, Any] | None = None
    edge_source_handle: str = "source"
    error: str | None = None
    error_type: str | None = None
    updates: list[tuple[tuple[str, str], Any, str]] = field(default_factory=list)
    """Variable writes ``(selector, value, value_type)`` applied before the outputs (assigner)."""
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    """Extra node events emitted before the edge events (human-input form events)."""
    pause: dict[str, Any] | None = None
    """With status ``paused``: the reason of ``node_pause_requested``."""

    @classmethod
    def failure(cls, error: str, error_type: str | None = "WorkflowNodeError", **kw: Any) -> NodeResult:
        return cls(status=FAILED, error=error, error_type=error_type, **kw)


class NodeError(Exception):
    """A node failure with an ``error_type`` for the result (``None`` means no type, as if-else)."""

    def __init__(self, message: str, error_type: str | None = "WorkflowNodeError") -> None:
        super().__init__(message)
        self.message = message
        self.error_type = error_type


ChunkSink = Callable[[str, Sequence[str], str, bool], None]


@dataclass(slots=True)
class RunContext:
    """Run-wide facts a node may need; a running node's copy also knows its execution and can
    stream chunks of its outputs to the apply loop."""

    run_id: str
    mode: str
    ports: Ports
    settings: Any
    declared_types: Mapping[tuple[str, str], str] = field(default_factory=dict)
    """Declared value types of conversation and loop variables (``(ns, name) → type``)."""
    execution_id: str = ""
    node_id: str = ""
    frame_id: str = "root"
    sink: ChunkSink | None = None

    def for_node(self, execution_id: str, node_id: str, frame_id: str, sink: ChunkSink | None) -> RunContext:
        return replace(self, execution_id=execution_id, node_id=node_id, frame_id=frame_id, sink=sink)

    def stream(self, selector: Sequence[str], text: str, is_final: bool = False) -> None:
        """Send a text delta of one of this node's outputs (``node_stream_chunk``)."""
        if self.sink is not None:
            self.sink("stream", selector, text, is_final)

    def reasoning(self, selector: Sequence[str], text: str, is_final: bool = False) -> None:
        """Send a reasoning delta (``node_reasoning_chunk``)."""
        if self.sink is not None:
            self.sink("reasoning", selector, text, is_final)


class Node:
    """Base class. Inline nodes compute synchronously inside the apply loop (``run_inline``);
    the others get their inputs resolved at start (``prepare``) and run as a task (``run``)."""

    type: ClassVar[str] = ""
    inline: ClassVar[bool] = True
    streams: ClassVar[bool] = False
    """The node sends ``ctx.stream`` chunks of its outputs (LLM, tool): response streams wait
    for them instead of the final value."""

    def __init__(self, spec: NodeSpec) -> None:
        self.spec = spec

    def run_inline(self, pool: VariablePool, ctx: RunContext) -> NodeResult:
        raise NotImplementedError

    def prepare(self, pool: VariablePool, ctx: RunContext) -> Any:
        return None

    async def run(self, prepared: Any, ctx: RunContext) -> NodeResult:
        raise NotImplementedError

    def stream_template(self) -> list[tuple[str, tuple[str, ...] | None]] | None:
        """Response nodes: the template of their response stream as (text, selector) pieces."""
        return None

    @classmethod
    def check_data(cls, data: Mapping[str, Any]) -> Problems:
        """Schema problems of ``data`` as ``(loc, message)`` pairs (import stage "node schemas")."""
        return []

    @classmethod
    def read_selectors(cls, data: Mapping[str, Any]) -> Iterator[tuple[Loc, Any]]:
        """The variable selectors ``data`` reads, with their location under ``data``."""
        return iter(())

    @classmethod
    def write_selectors(cls, data: Mapping[str, Any]) -> Iterator[tuple[Loc, Any]]:
        """The selectors the node writes besides its own outputs (assigner)."""
        return iter(())

    @classmethod
    def handles(cls, data: Mapping[str, Any]) -> set[str] | None:
        """Source handles the node can produce; ``None`` when any handle is acceptable."""
        return {"source"}

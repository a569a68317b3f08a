"""What every node implementation provides, and the result it hands to the apply loop."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from sluice.engine.graph import NodeSpec

if TYPE_CHECKING:
    from sluice.engine.pool import VariablePool
    from sluice.engine.ports import Ports

SUCCEEDED = "succeeded"
FAILED = "failed"
EXCEPTION = "exception"


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

    @classmethod
    def failure(cls, error: str, error_type: str | None = "WorkflowNodeError", **kw: Any) -> NodeResult:
        return cls(status=FAILED, error=error, error_type=error_type, **kw)


class NodeError(Exception):
    """A node failure with an ``error_type`` for the result (``None`` means no type, as if-else)."""

    def __init__(self, message: str, error_type: str | None = "WorkflowNodeError") -> None:
        super().__init__(message)
        self.message = message
        self.error_type = error_type


@dataclass(slots=True)
class RunContext:
    """Run-wide, read-only facts a node may need."""

    run_id: str
    mode: str
    ports: Ports
    settings: Any


class Node:
    """Base class. Inline nodes compute synchronously inside the apply loop (``run_inline``);
    the others get their inputs resolved at start (``prepare``) and run as a task (``run``)."""

    type: ClassVar[str] = ""
    inline: ClassVar[bool] = True

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

    @staticmethod
    def check_data(data: Mapping[str, Any]) -> list[tuple[list[str | int], str]]:
        """Schema problems of ``data`` as ``(loc, message)`` pairs (import stage "node schemas")."""
        return []

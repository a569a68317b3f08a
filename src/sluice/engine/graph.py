"""The compiled, immutable form of a workflow graph."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sluice.engine.nodes.base import Node

BRANCH_TYPES = frozenset({"if-else", "question-classifier", "human-input"})
CONTAINER_TYPES = frozenset({"iteration", "loop"})
RESPONSE_TYPES = frozenset({"end", "answer"})
HIDDEN_TYPES = frozenset({"iteration-start", "loop-start"})
RETRY_TYPES = frozenset({"code", "http-request", "llm", "tool"})


@dataclass(frozen=True, slots=True)
class RetryConfig:
    enabled: bool = False
    max_retries: int = 0
    interval_ms: int = 0


@dataclass(frozen=True, slots=True)
class NodeSpec:
    id: str
    type: str
    title: str
    version: str
    data: Mapping[str, Any]
    container_id: str = ""
    error_strategy: str | None = None
    default_value: Mapping[str, Any] = field(default_factory=dict)
    retry: RetryConfig = RetryConfig()

    @property
    def is_branch(self) -> bool:
        return self.type in BRANCH_TYPES or self.error_strategy == "fail-branch"

    @property
    def can_retry(self) -> bool:
        return self.type in RETRY_TYPES and self.retry.enabled and self.retry.max_retries > 0


@dataclass(frozen=True, slots=True)
class EdgeSpec:
    id: str
    source: str
    target: str
    source_handle: str = "source"


@dataclass(frozen=True, slots=True)
class AppMeta:
    name: str
    mode: str
    description: str = ""
    icon: str | None = None
    icon_type: str | None = None
    icon_background: str | None = None
    use_icon_as_answer_icon: bool = False


@dataclass(frozen=True, eq=False)
class CompiledGraph:
    """Everything a run needs from the DSL, parsed once and shared by every run of a version."""

    version: str
    app: AppMeta
    nodes: Mapping[str, NodeSpec]
    edges: tuple[EdgeSpec, ...]
    out_edges: Mapping[str, tuple[EdgeSpec, ...]]
    in_edges: Mapping[str, tuple[EdgeSpec, ...]]
    root_id: str
    runners: Mapping[str, Node]
    environment_variables: tuple[Mapping[str, Any], ...] = ()
    conversation_variables: tuple[Mapping[str, Any], ...] = ()
    features: Mapping[str, Any] = field(default_factory=dict)
    fingerprint_source: Any = field(default=None, repr=False)
    """What ``fingerprint`` hashes: the raw nodes and the edges."""
    children: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Direct children of each container, in document order."""
    descendants: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """Every node inside each container, at any depth."""
    declared_types: Mapping[tuple[str, str], str] = field(default_factory=dict)
    """Declared value types of conversation variables and loop variables."""

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the canonical graph JSON (§5.12), computed on first use."""
        cached = self.__dict__.get("_fingerprint")
        if cached is None:
            canonical = json.dumps(
                self.fingerprint_source,
                sort_keys=True,
                separators=(",", ":"),
                ensure_ascii=False,
                default=str,
            )
            cached = self.__dict__["_fingerprint"] = hashlib.sha256(canonical.encode()).hexdigest()
        return str(cached)

    def __hash__(self) -> int:
        return hash(self.fingerprint)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CompiledGraph) and other.fingerprint == self.fingerprint

    @property
    def start(self) -> NodeSpec:
        return self.nodes[self.root_id]

    @property
    def start_variables(self) -> list[Mapping[str, Any]]:
        variables = self.start.data.get("variables") or []
        return [v for v in variables if isinstance(v, Mapping)]

    def frame_nodes(self, container_id: str) -> list[str]:
        if container_id:
            return list(self.children.get(container_id, ()))
        return [n.id for n in self.nodes.values() if not n.container_id]

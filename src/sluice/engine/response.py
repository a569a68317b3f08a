"""Response streaming (§5.6): turns the pool's progress into ordered ``text_chunk`` events.

Each root-frame response node (end, answer) walks its stream template. A stream may start once
its node is reachable from the root over edges that are TAKEN or that no branch, container or
response node decides; one stream is active at a time, FIFO, ties by node id.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from sluice.engine.graph import BRANCH_TYPES, CONTAINER_TYPES, RESPONSE_TYPES, CompiledGraph
from sluice.engine.pool import VariablePool
from sluice.engine.values import ABSENT, render_markdown

TAKEN, SKIPPED, UNKNOWN = "taken", "skipped", "unknown"
Chunk = dict[str, Any]
Template = list[tuple[str, tuple[str, ...] | None]]


class ResponseStreams:
    def __init__(
        self,
        graph: CompiledGraph,
        pool: VariablePool,
        edge_state: dict[str, str],
        node_state: dict[str, str],
    ) -> None:
        self._graph = graph
        self._pool = pool
        self._edge_state = edge_state
        self._node_state = node_state
        self._templates: dict[str, Template] = {}
        for spec in graph.nodes.values():
            if spec.type in RESPONSE_TYPES and not spec.container_id:
                template = graph.runners[spec.id].stream_template()
                if template is not None:
                    self._templates[spec.id] = self._classify(template)
        self._blocking = {
            e.id
            for e in graph.edges
            if not graph.nodes[e.source].container_id
            and (
                graph.nodes[e.source].type in BRANCH_TYPES | CONTAINER_TYPES | RESPONSE_TYPES
                or graph.nodes[e.source].is_branch
            )
        }
        self._waiting = sorted(self._templates)
        self._queue: deque[str] = deque()
        self._active: str | None = None
        self._position = 0

    def _classify(self, template: Template) -> Template:
        """Pieces whose selector names no node and is not in the pool are plain text."""
        out: Template = []
        for text, selector in template:
            if selector is not None and (selector[0] in self._graph.nodes or self._pool.has(selector)):
                out.append((text, selector))
            elif text:
                out.append((text, None))
        return out

    @property
    def enabled(self) -> bool:
        return bool(self._templates)

    def is_blocking(self, edge_id: str) -> bool:
        return edge_id in self._blocking

    def activate_ready(self) -> None:
        """Queue every waiting stream whose node is now reachable (run start, blocking edge taken)."""
        if not self._waiting:
            return
        reachable = self._reachable()
        still: list[str] = []
        for node_id in self._waiting:
            (self._queue if node_id in reachable else still).append(node_id)
        self._waiting = still

    def _reachable(self) -> set[str]:
        graph, state = self._graph, self._edge_state
        seen = {graph.root_id}
        todo = [graph.root_id]
        while todo:
            for edge in graph.out_edges[todo.pop()]:
                status = state.get(edge.id, UNKNOWN)
                passable = status == TAKEN or (status == UNKNOWN and edge.id not in self._blocking)
                if passable and edge.target not in seen:
                    seen.add(edge.target)
                    todo.append(edge.target)
        return seen

    def flush(self, emit: Callable[[Chunk], None]) -> None:
        """Walk the active stream (and the ones after it) as far as the pool allows."""
        while True:
            if self._active is None:
                if not self._queue:
                    return
                self._active, self._position = self._queue.popleft(), 0
            template = self._templates[self._active]
            while self._position < len(template):
                text, selector = template[self._position]
                last = self._position == len(template) - 1
                if selector is None:
                    emit(self._chunk([self._active, "answer"], text, last, self._active))
                else:
                    outcome = self._variable(selector)
                    if outcome is None:
                        return  # wait for the value
                    if outcome is not ABSENT:
                        source = selector[0] if selector[0] in self._graph.nodes else self._active
                        emit(self._chunk(list(selector), render_markdown(outcome), last, source))
                self._position += 1
            self._active = None

    def _variable(self, selector: tuple[str, ...]) -> Any:
        """The value to stream, ``ABSENT`` to skip the piece, or ``None`` to wait."""
        value = self._pool.get(selector)
        if value is not ABSENT:
            return value
        source = selector[0]
        if source in self._graph.nodes and self._node_state.get(source) in (None, "running", "ready"):
            return None
        return ABSENT

    @staticmethod
    def _chunk(selector: list[str], text: str, is_final: bool, node_id: str) -> Chunk:
        return {"selector": selector, "text": text, "is_final": is_final, "attributed_node_id": node_id}

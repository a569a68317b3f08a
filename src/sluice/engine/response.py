"""Response streaming (§5.6): a deterministic transform from the raw stream to ``text_chunk``s.

Each root-frame response node (end, answer) walks its stream template. A stream may start once
its node is reachable from the root over edges that are TAKEN or not *blocking* (an edge whose
source is a branch, container or response node, or an assigner writing one of the template's
variables). Activatable streams queue FIFO (ties by node id); one is active at a time.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from sluice.engine.frames import DONE, SKIPPED, TAKEN, Frame
from sluice.engine.graph import BRANCH_TYPES, CONTAINER_TYPES, RESPONSE_TYPES, CompiledGraph
from sluice.engine.values import ABSENT, render_markdown

Selector = tuple[str, ...]
Piece = tuple[str, Selector | None]
ChunkEmitter = Callable[[list[str], str, bool, str], None]


class ResponseStreams:
    def __init__(
        self, graph: CompiledGraph, root: Frame, emit_text: ChunkEmitter, emit_reasoning: ChunkEmitter
    ) -> None:
        self._graph = graph
        self._root = root
        self._emit_text = emit_text
        self._emit_reasoning = emit_reasoning
        raw, self._blocking = stream_plan(graph)
        self._templates: dict[str, list[Piece]] = {n: self._classify(t) for n, t in raw.items()}
        self._waiting: list[str] = sorted(self._templates)
        self._waiting_blocking: frozenset[str] = frozenset().union(
            *(self._blocking[n] for n in self._waiting)
        )
        self._reached: set[str] = set()
        self._queue: deque[str] = deque()
        self._active: str | None = None
        self._position = 0
        self._buffers: dict[Selector, list[tuple[str, bool]]] = {}
        self._consumed = 0
        """Chunks of the active streamed piece already re-emitted."""
        self._blocked_on: str | None = None
        """The node whose value or chunks the active stream waits for."""

    def _classify(self, template: list[tuple[str, Selector | None]]) -> list[Piece]:
        """Pieces whose selector names no node and is not in the pool are plain text (Q1)."""
        out: list[Piece] = []
        pool = self._root.pool
        for text, selector in template:
            if selector is not None and (selector[0] in self._graph.nodes or pool.has(selector)):
                out.append((text, selector))
            elif text:
                out.append((text, None))
        return out

    @property
    def enabled(self) -> bool:
        return bool(self._templates)

    # -- activation ----------------------------------------------------------------------------

    def on_edge_taken(self, edge_id: str) -> None:
        if edge_id in self._waiting_blocking:
            self.activate_ready()

    def activate_ready(self) -> None:
        """Queue every waiting stream whose node is now reachable (run start, blocking edge taken)."""
        if not self._waiting:
            return
        still: list[str] = []
        for node_id in self._waiting:
            if node_id in self._reachable(self._blocking[node_id]):
                self._queue.append(node_id)
                self._blocked_on = None
                self._reached.add(node_id)
            else:
                still.append(node_id)
        if len(still) != len(self._waiting):
            self._waiting = still
            self._waiting_blocking = frozenset().union(*(self._blocking[n] for n in still))

    def _reachable(self, blocking: frozenset[str]) -> set[str]:
        graph, state = self._graph, self._root.edge_state
        seen = {graph.root_id}
        todo = [graph.root_id]
        while todo:
            for edge in graph.out_edges[todo.pop()]:
                status = state.get(edge.id)
                passable = status == TAKEN or (status is None and edge.id not in blocking)
                if passable and edge.target not in seen:
                    seen.add(edge.target)
                    todo.append(edge.target)
        return seen

    # -- chunks from streaming nodes -----------------------------------------------------------

    def on_stream_chunk(self, selector: Sequence[str], text: str, is_final: bool) -> None:
        if self._templates:
            self._buffers.setdefault(tuple(selector), []).append((text, is_final))
            self._blocked_on = None

    def on_reasoning_chunk(self, selector: Sequence[str], text: str, is_final: bool) -> None:
        node_id = selector[0] if selector else ""
        wanted = {(node_id, "reasoning_content"), (node_id, "text")}
        for stream in self._reached:
            if any(sel is not None and sel[:2] in wanted for _, sel in self._templates[stream]):
                self._emit_reasoning(list(selector), text, is_final, node_id)
                return

    # -- walking -------------------------------------------------------------------------------

    def flush(self, changed: str | None = None) -> None:
        """Walk the active stream (and the ones after it) as far as the pool allows.

        ``changed`` names the node whose result was just applied: while the active stream waits
        for another node that is still undecided, there is nothing to do."""
        blocked = self._blocked_on
        if (
            blocked is not None
            and blocked != changed
            and self._root.node_state.get(blocked) not in (DONE, SKIPPED)
        ):
            return
        self._blocked_on = None
        while True:
            if self._active is None:
                if not self._queue:
                    return
                self._active, self._position, self._consumed = self._queue.popleft(), 0, 0
            template = self._templates[self._active]
            while self._position < len(template):
                text, selector = template[self._position]
                last = self._position == len(template) - 1
                if selector is None:
                    self._emit_text([self._active, "answer"], text, last, self._active)
                elif not self._walk_variable(selector, last):
                    self._blocked_on = selector[0]
                    return  # wait for the value or more chunks
                self._position += 1
                self._consumed = 0
            self._active = None

    def _walk_variable(self, selector: Selector, last: bool) -> bool:
        """Emit what a variable piece has to give; ``False`` while it must wait."""
        assert self._active is not None
        source = selector[0]
        is_node = source in self._graph.nodes
        state = self._root.node_state.get(source) if is_node else DONE
        if state == SKIPPED:
            return True
        if is_node and self._graph.runners[source].streams:
            chunks = self._buffers.get(selector, [])
            while self._consumed < len(chunks):
                text, is_final = chunks[self._consumed]
                self._consumed += 1
                self._emit_text(list(selector), text, is_final, source)
                if is_final:
                    return True
            if state != DONE:
                return False
            if chunks:
                return True
        value = self._root.pool.get(selector)
        if value is ABSENT:
            return state == DONE
        self._emit_text(list(selector), render_markdown(value), last, source if is_node else self._active)
        return True

    def state(self) -> dict[str, Any]:
        """The transform's position, for snapshots."""
        return {
            "waiting": list(self._waiting),
            "queue": list(self._queue),
            "active": self._active,
            "position": self._position,
            "consumed": self._consumed,
            "buffered": {".".join(k): len(v) for k, v in sorted(self._buffers.items())},
        }


def stream_plan(
    graph: CompiledGraph,
) -> tuple[dict[str, list[tuple[str, Selector | None]]], dict[str, frozenset[str]]]:
    """Each root response node's stream template and blocking edges, computed once per graph."""
    cached = graph.__dict__.get("_stream_plan")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    common = {
        e.id
        for e in graph.edges
        if not graph.nodes[e.source].container_id
        and (
            graph.nodes[e.source].type in BRANCH_TYPES | CONTAINER_TYPES | RESPONSE_TYPES
            or graph.nodes[e.source].is_branch
        )
    }
    writers: dict[tuple[str, str], set[str]] = {}
    for spec in graph.nodes.values():
        if spec.container_id:
            continue
        for _, selector in graph.runners[spec.id].write_selectors(spec.data):
            if isinstance(selector, list | tuple) and len(selector) >= 2:
                writers.setdefault((str(selector[0]), str(selector[1])), set()).add(spec.id)
    templates: dict[str, list[tuple[str, Selector | None]]] = {}
    blocking: dict[str, frozenset[str]] = {}
    for spec in graph.nodes.values():
        if spec.type not in RESPONSE_TYPES or spec.container_id:
            continue
        template = graph.runners[spec.id].stream_template()
        if template is None:
            continue
        templates[spec.id] = template
        edges = set(common)
        for _, selector in template:
            if selector is None or len(selector) < 2:
                continue
            for writer in writers.get((selector[0], selector[1]), ()):
                edges.update(e.id for e in graph.out_edges[writer])
        blocking[spec.id] = frozenset(edges)
    plan = (templates, blocking)
    graph.__dict__["_stream_plan"] = plan
    return plan

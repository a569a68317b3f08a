"""Continuing a run from its recorded node results (streaming spec §8.4).

A new try must not execute a node whose result is already recorded. The engine's own replay entry
(``Engine.resume(run_input, recorded_events)``, engine spec §5.12) is used when the engine has it;
until then ``ReplayGraph`` does the same from outside the engine: recorded nodes get a stand-in
runner that hands back the recorded result without calling any port, and ``IdMap`` gives their
re-emitted events the recorded execution ids, so their ``node_started``/``node_finished`` keys are
absorbed by the event log instead of appearing twice.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict, deque
from collections.abc import Iterable, Mapping
from typing import Any

from sluice.engine import Event
from sluice.engine import events as ev
from sluice.engine.graph import CompiledGraph, NodeSpec
from sluice.engine.nodes.base import Node, NodeResult, RunContext
from sluice.engine.pool import VariablePool

RESULT_FIELDS = (
    "status",
    "inputs",
    "process_data",
    "outputs",
    "metadata",
    "llm_usage",
    "edge_source_handle",
    "error",
    "error_type",
)


def recorded_result(event: Mapping[str, Any]) -> NodeResult:
    result = event.get("result") or {}
    values = {name: result[name] for name in RESULT_FIELDS if result.get(name) is not None}
    return NodeResult(**values)


class _Recorded(Node):
    """Hands back recorded results in start order; past them, the real node runs."""

    inline = False

    def __init__(self, spec: NodeSpec, real: Node, results: deque[NodeResult]) -> None:
        super().__init__(spec)
        self._real = real
        self._results = results

    def prepare(self, pool: VariablePool, ctx: RunContext) -> Any:
        if self._results:
            return ("recorded", self._results.popleft())
        if self._real.inline:
            return ("done", self._real.run_inline(pool, ctx))
        return ("live", self._real.prepare(pool, ctx))

    async def run(self, prepared: Any, ctx: RunContext) -> NodeResult:
        mode, value = prepared
        if mode == "live":
            return await self._real.run(value, ctx)
        result: NodeResult = value
        return result

    def stream_template(self) -> list[tuple[str, tuple[str, ...] | None]] | None:
        return self._real.stream_template()


class IdMap:
    """Recorded execution ids by node, consumed in start order; maps fresh ids onto them."""

    def __init__(self, recorded: Mapping[str, Iterable[str]]) -> None:
        self._pending: dict[str, deque[str]] = {node: deque(ids) for node, ids in recorded.items()}
        self._map: dict[str, str] = {}
        self.live_started = False

    def apply(self, event: Event) -> bool:
        """Rewrite ``event`` in place; ``True`` if it belongs to a replayed execution."""
        node = event.node
        if node is None:
            return False
        if event.kind == ev.NODE_STARTED:
            pending = self._pending.get(node.node_id)
            if pending:
                self._map[node.execution_id] = pending.popleft()
            else:
                self.live_started = True
        mapped = self._map.get(node.execution_id)
        if mapped is None:
            return False
        event.node = dataclasses.replace(node, execution_id=mapped)
        return True


def replay_graph(graph: CompiledGraph, events: Iterable[Mapping[str, Any]]) -> tuple[CompiledGraph, IdMap]:
    """A copy of ``graph`` whose recorded nodes replay ``events`` (terminal node events, seq order)."""
    results: dict[str, deque[NodeResult]] = defaultdict(deque)
    ids: dict[str, list[str]] = defaultdict(list)
    for event in sorted(events, key=lambda e: int(e.get("seq") or 0)):
        node_id = str(event.get("node_id") or "")
        if node_id not in graph.nodes:
            continue
        results[node_id].append(recorded_result(event))
        ids[node_id].append(str(event.get("execution_id")))
    runners = dict(graph.runners)
    for node_id, queue in results.items():
        runners[node_id] = _Recorded(graph.nodes[node_id], graph.runners[node_id], queue)
    return dataclasses.replace(graph, runners=runners), IdMap(ids)

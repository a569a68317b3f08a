"""Compiled graphs by app version: a version's DSL is parsed once per process."""

from __future__ import annotations

from collections import OrderedDict

from sluice.adapters.sql.tables import Workflow
from sluice.engine import CompiledGraph, load_dsl


class GraphLoadError(Exception):
    pass


class GraphCache:
    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._graphs: OrderedDict[str, CompiledGraph] = OrderedDict()

    def get(self, workflow: Workflow) -> CompiledGraph:
        graph = self._graphs.get(workflow.id)
        if graph is not None:
            self._graphs.move_to_end(workflow.id)
            return graph
        result = load_dsl(workflow.dsl, allow_newer=True)
        if result.graph is None:
            message = "; ".join(f.message for f in result.errors) or "invalid DSL"
            raise GraphLoadError(f"The published workflow cannot be loaded: {message}")
        self._graphs[workflow.id] = result.graph
        while len(self._graphs) > self._size:
            self._graphs.popitem(last=False)
        return result.graph

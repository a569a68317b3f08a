"""Sluice's workflow engine: a pure asyncio library (no web, SQL, Redis or HTTP imports)."""

from sluice.engine.dsl import ImportResult, load_dsl
from sluice.engine.events import Event, NodeRef
from sluice.engine.graph import CompiledGraph
from sluice.engine.ports import Ports
from sluice.engine.scheduler import Engine, EngineSettings, RunInput

__all__ = [
    "CompiledGraph",
    "Engine",
    "EngineSettings",
    "Event",
    "ImportResult",
    "NodeRef",
    "Ports",
    "RunInput",
    "load_dsl",
]

"""Sluice's workflow engine: a pure asyncio library (no web, SQL, Redis or HTTP imports)."""

from sluice.engine.commands import Abort, Pause, UpdateVariables
from sluice.engine.dsl import ImportResult, load_dsl
from sluice.engine.events import Event, NodeRef
from sluice.engine.graph import CompiledGraph
from sluice.engine.ports import Ports
from sluice.engine.replay import ResumeError
from sluice.engine.scheduler import Engine
from sluice.engine.settings import EngineSettings, RunInput

__all__ = [
    "Abort",
    "CompiledGraph",
    "Engine",
    "EngineSettings",
    "Event",
    "ImportResult",
    "NodeRef",
    "Pause",
    "Ports",
    "ResumeError",
    "RunInput",
    "UpdateVariables",
    "load_dsl",
]

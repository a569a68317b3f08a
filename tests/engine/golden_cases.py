"""The reference workflows of ``tests/golden``: each ``<name>.yml`` DSL with its ``<name>.case.json``
(start inputs, system variables, settings, human-input answers). Code nodes name a program of
``PROGRAMS``, answered by the fake executor on a virtual clock."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sluice.engine import Engine, EngineSettings, Event, RunInput, load_dsl
from sluice.engine.graph import CompiledGraph
from sluice.engine.ports import CodeExecutionError, FormDecision, FormSubmitted, FormTimedOut, Ports
from sluice.engine.testkit import (
    Answer,
    FakeCodeExecutor,
    FakeHumanInput,
    FakePauseGate,
    VirtualClock,
    make_ports,
)

GOLDEN = Path(__file__).parent.parent / "golden"

PROGRAMS: dict[str, Any] = {
    "double": lambda i: {"doubled": i["n"] * 2, "greeting": "Hello, " + i["name"]},
    "upper": lambda i: {"upper": i["q"].upper(), "n": len(i["q"])},
    "slow_a": Answer({"v": "A"}, 0.5),
    "slow_b": Answer({"v": "B"}, 0.5),
    "boom": Answer(CodeExecutionError("RuntimeError: boom")),
    "int_x": {"x": 1},
    "mk": {"items": ["a", "b", "c"]},
    "staggered": lambda i: Answer({"output": i["item"] * 2}, {"a": 0.3, "b": 0.2, "c": 0.1}[i["item"]]),
    "fail_b": lambda i: (
        Answer(CodeExecutionError("ValueError: bad item"))
        if i["item"] == "b"
        else {"output": i["item"].upper()}
    ),
}


def canonical(event: Event) -> str:
    return json.dumps(event.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass
class Case:
    name: str
    graph: CompiledGraph
    inputs: dict[str, Any]
    system: dict[str, Any] = field(default_factory=dict)
    settings: EngineSettings = field(default_factory=EngineSettings)
    human_input: dict[str, FormDecision] = field(default_factory=dict)

    @property
    def golden(self) -> Path:
        return GOLDEN / f"{self.name}.jsonl"

    def run_input(self) -> RunInput:
        return RunInput(run_id=f"run-{self.name}", inputs=dict(self.inputs), system=dict(self.system))

    def ports(self, clock: VirtualClock | None = None, gate: FakePauseGate | None = None) -> Ports:
        clock = clock or VirtualClock()
        return make_ports(
            clock,
            code=FakeCodeExecutor(clock, PROGRAMS),
            human_input=FakeHumanInput(self.human_input),
            pause_gate=gate,
        )

    def engine(self, ports: Ports) -> Engine:
        return Engine(self.graph, ports, self.settings)


def _decision(raw: dict[str, Any]) -> FormDecision:
    if "timeout" in raw:
        return FormTimedOut("form-1", int(raw["timeout"]))
    action = str(raw["submitted"])
    return FormSubmitted("form-1", action, action.capitalize(), dict(raw.get("data") or {}))


def load_case(name: str) -> Case:
    result = load_dsl((GOLDEN / f"{name}.yml").read_text())
    assert result.graph is not None, [f.to_dict() for f in result.errors]
    raw = json.loads((GOLDEN / f"{name}.case.json").read_text())
    return Case(
        name=name,
        graph=result.graph,
        inputs=raw.get("inputs") or {},
        system=raw.get("system") or {},
        settings=EngineSettings(**(raw.get("settings") or {})),
        human_input={node: _decision(d) for node, d in (raw.get("human_input") or {}).items()},
    )


NAMES = sorted(p.name.removesuffix(".yml") for p in GOLDEN.glob("*.yml"))

"""Golden event logs (§7): each reference workflow's stream, byte for byte, twice.

``pytest --update-golden`` rewrites the logs; review the diff like code.
"""

from __future__ import annotations

import pytest

from sluice.engine.testkit import collect
from tests.engine.golden_cases import GOLDEN, NAMES, canonical, load_case

NODE_TYPES = {
    "start",
    "end",
    "answer",
    "if-else",
    "code",
    "template-transform",
    "variable-aggregator",
    "variable-assigner",
    "assigner",
    "list-operator",
    "iteration",
    "iteration-start",
    "loop",
    "loop-start",
    "loop-end",
    "human-input",
}


async def stream(name: str) -> str:
    case = load_case(name)
    events = await collect(case.engine(case.ports()).run(case.run_input()))
    return "".join(canonical(e) + "\n" for e in events)


def test_the_reference_workflows_cover_every_node_type_of_the_engine() -> None:
    assert len(NAMES) >= 15
    covered = {spec.type for name in NAMES for spec in load_case(name).graph.nodes.values()}
    assert covered >= NODE_TYPES


@pytest.mark.parametrize("name", NAMES)
async def test_golden_log(name: str, request: pytest.FixtureRequest) -> None:
    first = await stream(name)
    second = await stream(name)
    assert first == second, "two runs of the same workflow differ"
    path = GOLDEN / f"{name}.jsonl"
    if request.config.getoption("--update-golden"):
        path.write_text(first, encoding="utf-8")
        return
    assert path.exists(), f"no golden log for {name}: run pytest --update-golden"
    assert first == path.read_text(encoding="utf-8")

"""Engine overhead (engine spec §8): µs per node for a 52-node sequential chain, a 20-wide
fan-out/fan-in and a 100-item iteration; DSL load time for the chain; peak memory per run.

The same DSL documents also run through graphon 0.8.0, the reference engine, in the same
invocation when it can be installed: it needs Python ≥ 3.12, so a throwaway venv is made under
/tmp with ``~/.pyenv/versions/3.12.1/bin/python`` (or ``$GRAPHON_PYTHON``). Without it the
recorded reference figures of the spec are printed, and the output says so.

Run: ``uv run python bench/engine_overhead.py [--runs 50] [--loads 200] [--no-graphon]``.
Prints one JSON document; ``ratio`` is graphon's median run time over Sluice's for the chain.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import tracemalloc
import uuid
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from sluice.engine import Engine, Ports, RunInput, load_dsl  # noqa: E402
from sluice.runtime.clock import SystemClock, UuidIds  # noqa: E402

VENV = Path("/tmp/sluice-graphon-venv")
GRAPHON = "graphon==0.8.0"
RECORDED = {"graphon_run_ms": 24.0, "graphon_run_min_ms": 14.0, "graphon_load_ms_6_nodes": 7.6}
TARGET_US_PER_NODE = 40.0
TARGET_LOAD_MS = 1.0


def _doc(nodes: list[dict[str, Any]], edges: list[tuple[str, str]]) -> str:
    doc = {
        "version": "0.6.0",
        "kind": "app",
        "app": {"name": "bench", "mode": "workflow", "icon": "", "description": ""},
        "workflow": {
            "graph": {
                "nodes": nodes,
                "edges": [
                    {
                        "id": f"{s}-{t}",
                        "source": s,
                        "target": t,
                        "sourceHandle": "source",
                        "targetHandle": "target",
                    }
                    for s, t in edges
                ],
            },
            "environment_variables": [],
            "conversation_variables": [],
        },
    }
    return yaml.safe_dump(doc, sort_keys=False)


def _start(extra: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    variables = [{"variable": "x", "label": "x", "type": "text-input", "required": False}, *(extra or [])]
    return {
        "id": "start",
        "type": "custom",
        "data": {"type": "start", "title": "Start", "variables": variables},
    }


def _aggregator(node_id: str, selectors: list[list[str]]) -> dict[str, Any]:
    data = {"type": "variable-aggregator", "title": node_id, "output_type": "string", "variables": selectors}
    return {"id": node_id, "type": "custom", "data": data}


def _end(selector: list[str]) -> dict[str, Any]:
    outputs = [{"variable": "r", "value_selector": selector, "value_type": "string"}]
    return {"id": "end", "type": "custom", "data": {"type": "end", "title": "End", "outputs": outputs}}


def chain_dsl(n: int = 50) -> str:
    """start (input ``x``) → ``n`` aggregators, each reading ``[start, x]`` → end ``r = [a<n-1>, output]``."""
    ids = [f"a{i}" for i in range(n)]
    nodes = [_start(), *(_aggregator(i, [["start", "x"]]) for i in ids), _end([ids[-1], "output"])]
    edges = list(zip(["start", *ids], [*ids, "end"], strict=True))
    return _doc(nodes, edges)


def fanout_dsl(width: int = 20) -> str:
    ids = [f"b{i}" for i in range(width)]
    join = _aggregator("join", [[i, "output"] for i in ids])
    nodes = [_start(), *(_aggregator(i, [["start", "x"]]) for i in ids), join, _end(["join", "output"])]
    edges = [("start", i) for i in ids] + [(i, "join") for i in ids] + [("join", "end")]
    return _doc(nodes, edges)


def iteration_dsl() -> str:
    items = {"variable": "items", "label": "items", "type": "paragraph", "required": False}
    iteration = {
        "id": "it",
        "type": "custom",
        "data": {
            "type": "iteration",
            "title": "it",
            "start_node_id": "it_start",
            "iterator_selector": ["start", "items"],
            "output_selector": ["inner", "output"],
            "is_parallel": False,
            "parallel_nums": 10,
            "error_handle_mode": "terminated",
            "flatten_output": True,
        },
    }
    start_node = {"id": "it_start", "type": "custom-iteration-start", "parentId": "it"}
    start_node["data"] = {"type": "iteration-start", "title": "", "container_id": "it"}
    inner = _aggregator("inner", [["it", "item"]])
    inner["parentId"] = "it"
    inner["data"]["container_id"] = "it"
    nodes = [_start([items]), iteration, start_node, inner, _end(["it", "output"])]
    return _doc(nodes, [("start", "it"), ("it_start", "inner"), ("it", "end")])


CASES = {
    "chain": (chain_dsl(), {"x": "hello"}, 52),
    "fanout": (fanout_dsl(), {"x": "hello"}, 23),
    "iteration": (iteration_dsl(), {"x": "hello", "items": [f"i{n}" for n in range(100)]}, 103),
}


# -- Sluice --------------------------------------------------------------------------------------


async def _one_run(engine_graph: Any, inputs: dict[str, Any], ports: Ports) -> str:
    kind = ""
    async for event in Engine(engine_graph, ports).run(RunInput(str(uuid.uuid4()), inputs)):
        kind = event.kind
    return kind


def sluice_figures(runs: int, loads: int) -> dict[str, Any]:
    ports = Ports(SystemClock(), UuidIds())
    out: dict[str, Any] = {}

    async def measure() -> None:
        for name, (text, inputs, node_count) in CASES.items():
            graph = load_dsl(text).graph
            assert graph is not None
            for _ in range(5):
                assert await _one_run(graph, inputs, ports) == "run_succeeded"
            times = []
            gc.collect()
            for _ in range(runs):
                started = time.perf_counter()
                await _one_run(graph, inputs, ports)
                times.append(time.perf_counter() - started)
            median = statistics.median(times)
            tracemalloc.start()
            await _one_run(graph, inputs, ports)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            out[name] = {
                "run_ms": round(median * 1000, 3),
                "run_min_ms": round(min(times) * 1000, 3),
                "nodes": node_count,
                "us_per_node": round(median * 1e6 / node_count, 2),
                "peak_kib": round(peak / 1024, 1),
            }

    asyncio.run(measure())
    text = CASES["chain"][0]
    for _ in range(10):
        load_dsl(text)
    load_times, parse_times = [], []
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    for _ in range(loads):
        started = time.perf_counter()
        load_dsl(text)
        load_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        yaml.load(text, Loader=loader)
        parse_times.append(time.perf_counter() - started)
    out["load_ms"] = round(statistics.median(load_times) * 1000, 3)
    out["yaml_parse_ms"] = round(statistics.median(parse_times) * 1000, 3)
    out["c_yaml"] = loader.__name__ == "CSafeLoader"
    return out


# -- graphon (reference) -------------------------------------------------------------------------

WORKER = r"""
import json, statistics, sys, time, warnings
warnings.filterwarnings("ignore")
from graphon.dsl import loads
spec = json.load(sys.stdin)
out = {}
for name, case in spec["cases"].items():
    text, inputs = case["dsl"], case["inputs"]
    def once():
        engine = loads(text, start_inputs=inputs)
        started = time.perf_counter()
        last = None
        for event in engine.run():
            last = type(event).__name__
        return time.perf_counter() - started, last
    for _ in range(spec["warmup"]):
        once()
    times, last = [], None
    for _ in range(spec["runs"]):
        t, last = once()
        times.append(t)
    out[name] = {"run_ms": round(statistics.median(times) * 1000, 3),
                 "run_min_ms": round(min(times) * 1000, 3), "last_event": last}
text = spec["cases"]["chain"]["dsl"]
loads_t = []
for _ in range(spec["loads"]):
    started = time.perf_counter()
    loads(text, start_inputs={"x": "hello"})
    loads_t.append(time.perf_counter() - started)
out["load_ms"] = round(statistics.median(loads_t) * 1000, 3)
print(json.dumps(out))
"""


def graphon_python() -> Path | None:
    """The venv's interpreter with graphon installed, creating the venv when needed."""
    python = VENV / "bin" / "python"
    if (
        python.exists()
        and subprocess.run([python, "-c", "import graphon"], capture_output=True).returncode == 0
    ):
        return python
    base = os.environ.get("GRAPHON_PYTHON") or str(Path.home() / ".pyenv/versions/3.12.1/bin/python")
    if not Path(base).exists():
        return None
    try:
        subprocess.run([base, "-m", "venv", str(VENV)], check=True, capture_output=True, timeout=300)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", GRAPHON], check=True, capture_output=True, timeout=900
        )
    except (subprocess.SubprocessError, OSError):
        return None
    return python


def graphon_figures(python: Path, runs: int, loads: int) -> dict[str, Any]:
    spec = {
        "cases": {name: {"dsl": text, "inputs": inputs} for name, (text, inputs, _) in CASES.items()},
        "runs": runs,
        "warmup": 5,
        "loads": loads,
    }
    done = subprocess.run(
        [str(python), "-c", WORKER], input=json.dumps(spec), capture_output=True, text=True, timeout=1800
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--loads", type=int, default=200)
    parser.add_argument("--no-graphon", action="store_true")
    args = parser.parse_args()
    runs, loads = max(args.runs, 30), max(args.loads, 100)
    sluice = sluice_figures(runs, loads)
    report: dict[str, Any] = {
        "sluice_run_ms": sluice["chain"]["run_ms"],
        "sluice_us_per_node": sluice["chain"]["us_per_node"],
        "sluice_load_ms": sluice["load_ms"],
        "sluice_fanout_us_per_node": sluice["fanout"]["us_per_node"],
        "sluice_iteration_us_per_node": sluice["iteration"]["us_per_node"],
        "sluice_peak_kib": {name: sluice[name]["peak_kib"] for name in CASES},
        "sluice": sluice,
        "targets": {"us_per_node": TARGET_US_PER_NODE, "load_ms": TARGET_LOAD_MS},
        "meets_targets": sluice["chain"]["us_per_node"] <= TARGET_US_PER_NODE
        and sluice["load_ms"] <= TARGET_LOAD_MS,
        "python": platform.python_version(),
        "machine": f"{platform.machine()} {os.cpu_count()} cpu, {platform.system()} {platform.release()}",
    }
    python = None if args.no_graphon else graphon_python()
    if python is not None:
        try:
            graphon = graphon_figures(python, runs, loads)
        except (RuntimeError, subprocess.SubprocessError, json.JSONDecodeError) as exc:
            graphon, report["graphon_error"] = {}, str(exc)[-500:]
    else:
        graphon = {}
    if graphon:
        report.update(
            graphon_run_ms=graphon["chain"]["run_ms"],
            graphon_load_ms=graphon["load_ms"],
            ratio=round(graphon["chain"]["run_ms"] / sluice["chain"]["run_ms"], 1),
            load_ratio=round(graphon["load_ms"] / sluice["load_ms"], 1),
            graphon={name: graphon[name] for name in CASES},
            graphon_source=f"{GRAPHON} measured in this run ({python})",
        )
    else:
        report.update(
            graphon_run_ms=RECORDED["graphon_run_ms"],
            graphon_load_ms=None,
            ratio=round(RECORDED["graphon_run_ms"] / sluice["chain"]["run_ms"], 1),
            graphon_source="graphon not installable here: recorded reference figures of engine spec §8 "
            "(24 ms median chain run; 7.6 ms to load the 6-node sample)",
        )
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

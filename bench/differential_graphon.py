"""Differential test against graphon 0.8.0 (engine spec §7): the same DSL and inputs through the
reference engine and through Sluice, normalised, compared.

Cases are the reference workflows of ``tests/golden`` whose nodes need no outside service but
code, with each named fake program replaced by real Python. graphon runs in a subprocess of its
own venv (Python ≥ 3.12, made under /tmp like ``engine_overhead.py``) and reaches a local
Dify-sandbox emulator for code nodes; Sluice runs the same code in-process. Compared per case:
run status, run outputs, ``exceptions_count``; each node's status, outputs, handle and error; the
node start order (sequential graphs) and the streamed text (Sluice ``text_chunk`` vs graphon
through its response-stream filter). Normalised per §7: ids, timestamps, Sluice-only fields and
events, graphon's ``sys.<input>`` start outputs (Q4). Known divergences are labelled with their
quirk-register id.

Run: ``uv run python bench/differential_graphon.py``. Prints a summary and one line per
difference; exits 0 (it reports, it does not judge).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from engine_overhead import graphon_python  # noqa: E402
from sluice.engine import Engine, RunInput, load_dsl  # noqa: E402
from sluice.engine import events as ev  # noqa: E402
from sluice.engine.ports import CodeExecutionError  # noqa: E402
from sluice.engine.testkit import SeqIds, VirtualClock, make_ports  # noqa: E402

GOLDEN = ROOT / "tests" / "golden"
PYTHON = {
    "double": 'def main(name, n):\n    return {"doubled": n * 2, "greeting": "Hello, " + name}\n',
    "upper": 'def main(q):\n    return {"upper": q.upper(), "n": len(q)}\n',
    "slow_a": 'def main():\n    return {"v": "A"}\n',
    "slow_b": 'def main():\n    return {"v": "B"}\n',
    "boom": 'def main():\n    raise RuntimeError("boom")\n',
    "int_x": 'def main():\n    return {"x": 1}\n',
    "mk": 'def main():\n    return {"items": ["a", "b", "c"]}\n',
    "staggered": 'def main(item):\n    return {"output": item * 2}\n',
    "fail_b": (
        'def main(item):\n    if item == "b":\n        raise ValueError("bad item")\n'
        '    return {"output": item.upper()}\n'
    ),
}
SKIPPED = {
    "human_input_approve": "human-input needs graphon's form repository (not part of its standalone loader)",
    "human_input_pause": "human-input needs graphon's form repository (not part of its standalone loader)",
    "human_input_timeout": "human-input needs graphon's form repository (not part of its standalone loader)",
    "step_limit": "graphon enforces limits only through an ExecutionLimitsLayer the loader does not add",
}
KNOWN = {
    "aggregators": "Q16: graphon's loader cannot load the legacy type variable-assigner (aggregator v1); "
    "Sluice accepts it",
    "assigner_v1": "graphon 0.8.0's standalone DSL loader does not recognise assigner v1 data; Sluice runs "
    "it per §4.7 (as Dify does)",
    "template_transform": "Q15: graphon's standalone template-transform fails on undefined names; "
    "Dify renders ''",
    "error_type": "Q24: graphon standalone reports SandboxCodeExecutionError where Dify (and Sluice) "
    "say CodeExecutionError",
}


def last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else text


# -- a Dify-sandbox emulator for graphon, and the same code for Sluice --------------------------


class Sandbox(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        done = subprocess.run(
            [sys.executable, "-c", body["code"]], capture_output=True, text=True, timeout=30
        )
        error = last_line(done.stderr) if done.returncode else ""
        payload = json.dumps(
            {"code": 0, "message": "success", "data": {"stdout": done.stdout, "error": error}}
        )
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(payload.encode())

    def log_message(self, *args: Any) -> None:
        pass


class InProcessCode:
    async def run(
        self, language: str, code: str, inputs: dict[str, Any], limits: dict[str, Any]
    ) -> dict[str, Any]:
        scope: dict[str, Any] = {}
        try:
            exec(code, scope)  # the bench's own fixtures, as the sandbox would run them
            result = scope["main"](**inputs)
        except Exception as exc:
            raise CodeExecutionError(f"{type(exc).__name__}: {exc}") from None
        return json.loads(json.dumps(result))  # type: ignore[no-any-return]


# -- cases ---------------------------------------------------------------------------------------


def cases() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(GOLDEN.glob("*.yml")):
        name = path.stem
        if name in SKIPPED:
            continue
        doc = yaml.safe_load(path.read_text())
        for node in doc["workflow"]["graph"]["nodes"]:
            data = node["data"]
            if data.get("type") == "code":
                data["code"] = PYTHON[data["code"]]
        case = json.loads((GOLDEN / f"{name}.case.json").read_text())
        out[name] = {
            "dsl": yaml.safe_dump(doc, sort_keys=False, allow_unicode=True),
            "inputs": case.get("inputs") or {},
            "system": case.get("system") or {},
        }
    return out


def sluice_view(case: dict[str, Any]) -> dict[str, Any]:
    graph = load_dsl(case["dsl"]).graph
    assert graph is not None

    async def go() -> list[ev.Event]:
        ports = make_ports(VirtualClock(), code=InProcessCode())
        ports.ids = SeqIds()
        engine = Engine(graph, ports)
        return [e async for e in engine.run(RunInput("r", case["inputs"], system=case["system"]))]

    events = asyncio.run(go())
    final = events[-1]
    status = {
        ev.RUN_SUCCEEDED: "succeeded",
        ev.RUN_PARTIAL_SUCCEEDED: "partial-succeeded",
        ev.RUN_FAILED: "failed",
    }.get(final.kind, final.kind)
    nodes = [
        {
            "node_id": e.node.node_id,
            "status": e.data["result"]["status"],
            "outputs": e.data["result"]["outputs"],
            "handle": e.data["result"]["edge_source_handle"],
            "error": e.data["result"]["error"],
        }
        for e in events
        if e.kind in ev.NODE_TERMINAL and e.node is not None
    ]
    return {
        "status": status,
        "outputs": final.data.get("outputs") or {},
        "exceptions_count": final.data.get("exceptions_count", 0),
        "nodes": nodes,
        "started": [e.node.node_id for e in events if e.kind == ev.NODE_STARTED and e.node is not None],
        "stream": [[e.data["selector"], e.data["text"]] for e in events if e.kind == ev.TEXT_CHUNK],
    }


WORKER = r"""
import json, sys, warnings
warnings.filterwarnings("ignore")
from graphon.dsl import loads
from graphon.engine.filter import EngineEventFilterContext, ResponseStreamFilter, filter_engine_events

def plain(o):
    return getattr(o, "value", None) if hasattr(o, "value") else str(o)

def dump(value):
    return json.loads(json.dumps(value, default=plain))

spec = json.load(sys.stdin)
out = {}
for name, case in spec.items():
    try:
        engine = loads(case["dsl"], start_inputs=case["inputs"], run_context=case["system"])
        raw = []
        def tee(events):
            for event in events:
                raw.append(event)
                yield event
        context = EngineEventFilterContext.from_engine(engine)
        chain = filter_engine_events(tee(engine.run()), context=context, filters=[ResponseStreamFilter()])
        filtered = list(chain)
    except Exception as exc:
        out[name] = {"error": f"{type(exc).__name__}: {exc}"}
        continue
    nodes, started, stream, final = [], [], [], {}
    for event in raw:
        kind = type(event).__name__
        if kind == "NodeRunStartedEvent":
            started.append(event.node_id)
        elif kind in ("NodeRunSucceededEvent", "NodeRunFailedEvent", "NodeRunExceptionEvent"):
            result = event.node_run_result
            nodes.append({"node_id": event.node_id, "node_type": str(event.node_type),
                          "status": str(getattr(result.status, "value", result.status)),
                          "outputs": dump(result.outputs), "handle": result.edge_source_handle or "source",
                          "error": result.error or getattr(event, "error", None) or None,
                          "error_type": result.error_type or None})
        elif kind.startswith("GraphRun") and kind != "GraphRunStartedEvent":
            final = {"kind": kind, "outputs": dump(getattr(event, "outputs", {}) or {}),
                     "exceptions_count": getattr(event, "exceptions_count", 0),
                     "error": getattr(event, "error", None)}
    for event in filtered:
        if type(event).__name__ == "NodeRunStreamChunkEvent":
            stream.append([list(event.selector), event.chunk])
    out[name] = {"nodes": nodes, "started": started, "stream": stream, "final": final}
print(json.dumps(out))
"""


def graphon_views(python: Path, all_cases: dict[str, dict[str, Any]], port: int) -> dict[str, Any]:
    env = {"CODE_EXECUTION_ENDPOINT": f"http://127.0.0.1:{port}", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [str(python), "-c", WORKER],
        input=json.dumps(all_cases),
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def normalise_graphon(view: dict[str, Any], case: dict[str, Any]) -> dict[str, Any]:
    final = view["final"]
    status = {
        "GraphRunSucceededEvent": "succeeded",
        "GraphRunPartialSucceededEvent": "partial-succeeded",
        "GraphRunFailedEvent": "failed",
    }.get(final.get("kind"), final.get("kind"))
    nodes = []
    for node in view["nodes"]:
        if node["node_type"] in ("iteration-start", "loop-start"):
            continue
        outputs = dict(node["outputs"])
        if node["node_type"] == "start":  # Q4: graphon copies start inputs into sys.<key>
            for key in case["inputs"]:
                if key not in case["system"]:
                    outputs.pop(f"sys.{key}", None)
        nodes.append({k: node[k] for k in ("node_id", "status", "handle", "error")} | {"outputs": outputs})
    return {
        "status": status,
        "outputs": final.get("outputs") or {},
        "exceptions_count": final.get("exceptions_count") or 0,
        "nodes": nodes,
        "started": view["started"],
        "stream": view["stream"],
    }


def key(node: dict[str, Any]) -> str:
    return json.dumps(node, sort_keys=True, default=str)


def compare(name: str, ours: dict[str, Any], theirs: dict[str, Any]) -> list[dict[str, Any]]:
    diffs: list[dict[str, Any]] = []

    def note(aspect: str, a: Any, b: Any) -> None:
        text = json.dumps([a, b], default=str)
        explanation = KNOWN.get(name, "")
        if "SandboxCodeExecutionError" in text:
            explanation = KNOWN["error_type"]
        diffs.append({"case": name, "aspect": aspect, "sluice": a, "graphon": b, "explanation": explanation})

    for aspect in ("status", "outputs", "exceptions_count"):
        if ours[aspect] != theirs[aspect]:
            note(aspect, ours[aspect], theirs[aspect])
    mine, reference = Counter(map(key, ours["nodes"])), Counter(map(key, theirs["nodes"]))
    if mine != reference:
        note("node results", sorted((mine - reference).elements()), sorted((reference - mine).elements()))
    parallel = len(set(ours["started"])) != len(ours["started"]) or "parallel" in name or "join" in name
    if not parallel and ours["started"] != theirs["started"]:
        note("node start order", ours["started"], theirs["started"])
    elif Counter(ours["started"]) != Counter(theirs["started"]):
        note("nodes started", sorted(ours["started"]), sorted(theirs["started"]))
    if "".join(t for _, t in ours["stream"]) != "".join(t for _, t in theirs["stream"]):
        note("streamed text", ours["stream"], theirs["stream"])
    return diffs


def main() -> None:
    all_cases = cases()
    report: dict[str, Any] = {"cases": len(all_cases), "skipped": SKIPPED}
    python = graphon_python()
    if python is None:
        report["error"] = "graphon 0.8.0 is not installable here (needs Python >= 3.12): nothing compared"
        print(json.dumps(report, indent=2))
        return
    server = ThreadingHTTPServer(("127.0.0.1", 0), Sandbox)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        views = graphon_views(python, all_cases, server.server_address[1])
    finally:
        server.shutdown()
    differences: list[dict[str, Any]] = []
    agree = []
    for name, case in all_cases.items():
        view = views.get(name, {})
        if "error" in view:
            differences.append(
                {
                    "case": name,
                    "aspect": "graphon error",
                    "sluice": None,
                    "graphon": view["error"],
                    "explanation": KNOWN.get(name, ""),
                }
            )
            continue
        found = compare(name, sluice_view(case), normalise_graphon(view, case))
        differences.extend(found)
        if not found:
            agree.append(name)
    report.update(agree=len(agree), agreeing=agree, differences=len(differences))
    print(json.dumps(report, indent=2))
    for diff in differences:
        label = f" [{diff['explanation']}]" if diff["explanation"] else " [unexplained]"
        print(f"- {diff['case']}: {diff['aspect']}{label}")
        print(f"    sluice : {json.dumps(diff['sluice'], ensure_ascii=False, default=str)[:600]}")
        print(f"    graphon: {json.dumps(diff['graphon'], ensure_ascii=False, default=str)[:600]}")


if __name__ == "__main__":
    main()

"""Stop latency (streaming spec §10 G12, issue 5 must-show 3): a run blocked in a code node sleeping
60 s is stopped; measured from the stop request being sent to ``workflow_finished(stopped)``
arriving on the run's open stream, over N stops, in embedded and distributed mode. Printed next to
a bare ``GET /_health`` round trip measured in the same run (the reference).

``uv run python bench/stop_latency.py [--stops 100]``; needs PostgreSQL and Redis for the
distributed half. Writes ``bench/results/stop_latency-<date>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

import httpx  # noqa: E402
from tests.streaming.support import chain_dsl, import_app, launch, private_database  # noqa: E402

PG = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def one_stop(client: httpx.AsyncClient, headers: dict[str, str]) -> tuple[float, float]:
    """(stop answered, terminal received) in seconds after the stop request was sent."""
    body = {"inputs": {"query": "x"}, "response_mode": "streaming", "user": "u1"}
    async with client.stream("POST", "/v1/workflows/run", json=body, headers=headers) as resp:
        task = resp.headers["x-task-id"]
        buffer = b""
        chunks = resp.aiter_raw()
        async for chunk in chunks:
            buffer += chunk
            if b'"node_id":"n2"' in buffer:
                break
        await asyncio.sleep(0.2)  # the node is inside its 60 s sleep
        sent = time.perf_counter()
        stop = asyncio.ensure_future(
            client.post(f"/v1/workflows/tasks/{task}/stop", json={"user": "u1"}, headers=headers)
        )
        async for chunk in chunks:
            buffer += chunk
            if b'"event":"workflow_finished"' in buffer:
                break
        terminal = time.perf_counter() - sent
        answer = await stop
        assert answer.json() == {"result": "success"}
        assert b'"status":"stopped"' in buffer.split(b'"event":"workflow_finished"', 1)[1]
        return answer.elapsed.total_seconds(), terminal


async def measure(base_url: str, headers: dict[str, str], stops: int) -> dict[str, Any]:
    answers: list[float] = []
    terminals: list[float] = []
    health: list[float] = []
    async with httpx.AsyncClient(base_url=base_url, timeout=120) as client:
        await one_stop(client, headers)  # warm up
        for _ in range(stops):
            t = time.perf_counter()
            await client.get("/_health")
            health.append(time.perf_counter() - t)
            answered, terminal = await one_stop(client, headers)
            answers.append(answered)
            terminals.append(terminal)
    ms = lambda v: round(1000 * v, 1)  # noqa: E731
    return {
        "stops": stops,
        "terminal_p50_ms": ms(statistics.median(terminals)),
        "terminal_p99_ms": ms(percentile(terminals, 0.99)),
        "terminal_max_ms": ms(max(terminals)),
        "answer_p50_ms": ms(statistics.median(answers)),
        "answer_p99_ms": ms(percentile(answers, 0.99)),
        "health_p50_ms": ms(statistics.median(health)),
        "health_p99_ms": ms(percentile(health, 0.99)),
    }


def bench(mode: str, tmp: Path, database_url: str | None, stops: int) -> dict[str, Any]:
    server = launch(mode, tmp, database_url=database_url, redis_url=REDIS if database_url else None)
    try:
        app = import_app(server, tmp, chain_dsl(3, slow={2: 60}), "stop")
        return asyncio.run(measure(server.base_url, app.headers, stops))
    finally:
        server.stop_all()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stops", type=int, default=100)
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        results["embedded"] = bench("embedded", Path(tmp) / "e", None, args.stops)
        gen = private_database(PG)
        try:
            results["distributed"] = bench("distributed", Path(tmp) / "d", next(gen), args.stops)
        finally:
            gen.close()
    print(
        f"stop -> workflow_finished(stopped) at the client, node sleeping 60 s, {args.stops} stops per mode"
    )
    for mode, r in results.items():
        ratio = r["terminal_p99_ms"] / r["health_p99_ms"]
        print(
            f"  {mode:<11} p50 {r['terminal_p50_ms']:6.1f} ms  p99 {r['terminal_p99_ms']:6.1f} ms  "
            f"max {r['terminal_max_ms']:6.1f} ms  (target p99 <= 1000 ms) | stop answered p50 "
            f"{r['answer_p50_ms']:.1f} ms | reference GET /_health p50 {r['health_p50_ms']:.1f} ms "
            f"p99 {r['health_p99_ms']:.1f} ms | p99 = {ratio:.1f} x reference"
        )
    out = ROOT / "bench" / "results" / f"stop_latency-{datetime.date.today().isoformat()}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"(written to {out.relative_to(ROOT)})")


if __name__ == "__main__":
    main()

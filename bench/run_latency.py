"""Request → ``workflow_finished`` latency (p50/p99) and runs/s for a 5-node workflow, in embedded
and distributed mode, next to the same workflow run by the engine alone in-process.

The ratio service/engine shows what the service adds (HTTP, SQL, event log, queue, SSE).
Run: ``uv run python bench/run_latency.py [--runs 200] [--concurrency 8] [--modes embedded,distributed]``.
Distributed mode needs PostgreSQL and Redis (TEST_DATABASE_URL / TEST_REDIS_URL or the defaults).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.servers import launch  # noqa: E402
from tests.support.services import DEFAULT_PG, DEFAULT_REDIS  # noqa: E402

from sluice.engine import Engine, Ports, RunInput, load_dsl  # noqa: E402
from sluice.runtime.clock import SystemClock, UuidIds  # noqa: E402

DSL = ROOT / "bench" / "dsl" / "five_nodes.yml"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def summary(latencies: list[float], wall: float) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(latencies, 0.5) * 1000, 3),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 3),
        "runs_per_s": round(len(latencies) / wall, 1),
    }


async def engine_alone(runs: int, concurrency: int) -> dict[str, float]:
    graph = load_dsl(DSL.read_text()).graph
    assert graph is not None
    ports = Ports(SystemClock(), UuidIds())

    async def one() -> float:
        started = time.perf_counter()
        async for event in Engine(graph, ports).run(RunInput(str(uuid.uuid4()), {"name": "Ada"})):
            if event.kind == "run_succeeded":
                break
        return time.perf_counter() - started

    for _ in range(20):
        await one()
    sequential = [await one() for _ in range(runs)]
    started = time.perf_counter()
    sem = asyncio.Semaphore(concurrency)

    async def bounded() -> float:
        async with sem:
            return await one()

    await asyncio.gather(*(bounded() for _ in range(runs)))
    wall = time.perf_counter() - started
    return {**summary(sequential, 1), "runs_per_s": round(runs / wall, 1)}


async def one_request(client: httpx.AsyncClient, key: str) -> float:
    body = {"inputs": {"name": "Ada"}, "response_mode": "streaming", "user": "bench"}
    started = time.perf_counter()
    async with client.stream(
        "POST", "/v1/workflows/run", json=body, headers={"Authorization": f"Bearer {key}"}
    ) as resp:
        assert resp.status_code == 200, await resp.aread()
        async for line in resp.aiter_lines():
            if line.startswith("data: ") and '"event":"workflow_finished"' in line:
                assert '"status":"succeeded"' in line, line
                break
    return time.perf_counter() - started


async def service(base_url: str, key: str, runs: int, concurrency: int) -> dict[str, float]:
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        for _ in range(20):
            await one_request(client, key)
        sequential = [await one_request(client, key) for _ in range(runs)]
        sem = asyncio.Semaphore(concurrency)

        async def bounded() -> float:
            async with sem:
                return await one_request(client, key)

        started = time.perf_counter()
        await asyncio.gather(*(bounded() for _ in range(runs)))
        wall = time.perf_counter() - started
    return {**summary(sequential, 1), "runs_per_s": round(runs / wall, 1)}


async def fresh_database() -> tuple[str, str]:
    admin = DEFAULT_PG
    name = f"sluice_bench_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(admin)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    return admin, name


async def drop_database(admin: str, name: str) -> None:
    conn = await asyncpg.connect(admin)
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.close()


def measure_mode(mode: str, runs: int, concurrency: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        database_url = None
        created: tuple[str, str] | None = None
        if mode == "distributed":
            created = asyncio.run(fresh_database())
            database_url = DEFAULT_PG.replace("postgresql://", "postgresql+asyncpg://").rsplit("/", 1)[0]
            database_url += "/" + created[1]
        server = launch(
            mode,
            Path(tmp),
            database_url,
            DEFAULT_REDIS if mode == "distributed" else None,
            f"bench{uuid.uuid4().hex[:6]}",
        )
        try:
            key = server.create_key(server.import_app(DSL))
            return asyncio.run(service(server.base_url, key, runs, concurrency))
        finally:
            server.stop_all()
            if created:
                asyncio.run(drop_database(*created))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--modes", default="embedded,distributed")
    args = parser.parse_args()
    reference = asyncio.run(engine_alone(args.runs, args.concurrency))
    result: dict[str, object] = {
        "workflow": "start → template → aggregator → template → end (5 nodes)",
        "runs": args.runs,
        "concurrency": args.concurrency,
        "engine_alone": reference,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {len(__import__('os').sched_getaffinity(0))} cores",
    }
    for mode in args.modes.split(","):
        figures = measure_mode(mode, args.runs, args.concurrency)
        figures["p50_ratio_vs_engine"] = round(figures["p50_ms"] / reference["p50_ms"], 1)
        figures["throughput_ratio_vs_engine"] = round(figures["runs_per_s"] / reference["runs_per_s"], 3)
        result[mode] = figures
    print(json.dumps(result, indent=2, ensure_ascii=False))
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / f"run_latency-{time.strftime('%Y-%m-%d')}.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

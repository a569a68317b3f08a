"""The torture run at full size (streaming spec §11 scenario 5, G8): a TCP proxy cuts every SSE
connection 5-500 ms after it opens; each client resumes with ``Last-Event-ID`` until its run's
``workflow_finished``; at the end every client's frames are compared byte for byte with the stored
stream. Prints lost / duplicated frames (must be 0), cuts, reconnects, and the time to follow the
runs through the cuts next to the same runs followed without the proxy (the reference).

``uv run python bench/torture.py [--runs 50] [--nodes 200] [--concurrency 10] [--mode both]``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

import httpx  # noqa: E402
from tests.streaming.support import (  # noqa: E402
    App,
    SSEParser,
    chain_dsl,
    data_frames,
    events_url,
    follow_through_cuts,
    import_app,
    launch,
    private_database,
)
from tests.support.chaos_proxy import ChaosProxy  # noqa: E402

PG = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


async def stored(client: httpx.AsyncClient, app: App, task_id: str) -> list[bytes]:
    parser = SSEParser()
    params = {"user": "u1", "cursor": "0-0"}
    async with client.stream("GET", events_url(task_id), params=params, headers=app.headers) as resp:
        async for chunk in resp.aiter_raw():
            parser.feed(chunk)
    return [f.raw for f in data_frames(parser.frames)]


async def follow_all(
    base: str, via: str, app: App, runs: int, concurrency: int, tag: str
) -> tuple[list[Any], float]:
    timeout = httpx.Timeout(120)
    results: list[Any] = []
    started = time.perf_counter()
    async with (
        httpx.AsyncClient(base_url=base, timeout=timeout) as direct,
        httpx.AsyncClient(base_url=via, timeout=timeout) as proxied,
    ):
        gate = asyncio.Semaphore(concurrency)

        async def one(i: int) -> Any:
            async with gate:
                return await follow_through_cuts(direct, proxied, app, {"query": f"{tag}{i}"})

        results = list(await asyncio.gather(*(one(i) for i in range(runs))))
    return results, time.perf_counter() - started


async def torture(server_url: str, app: App, args: argparse.Namespace) -> dict[str, Any]:
    reference, ref_seconds = await follow_all(server_url, server_url, app, args.runs, args.concurrency, "ref")
    upstream = urlsplit(server_url)
    proxy = ChaosProxy(upstream.hostname or "127.0.0.1", upstream.port or 80, cut_after=(0.005, 0.5), seed=8)
    await proxy.start()
    results, seconds = await follow_all(server_url, proxy.url, app, args.runs, args.concurrency, "cut")
    await proxy.close()
    lost = duplicated = frames = terminals_ok = differ = 0
    async with httpx.AsyncClient(base_url=server_url, timeout=120) as client:
        for result in results:
            expected = await stored(client, app, result.task_id)
            got = [f.raw for f in result.frames]
            frames += len(expected)
            lost += len(set(expected) - set(got))
            duplicated += len(got) - len(set(got))
            terminals_ok += sum(f.data["event"] == "workflow_finished" for f in result.frames) == 1
            differ += got != expected
    return {
        "runs": len(results),
        "frames": frames,
        "cuts": proxy.cuts,
        "reconnects": sum(r.connections for r in results),
        "lost": lost,
        "duplicated": duplicated,
        "runs_not_identical": differ,
        "one_terminal_per_run": terminals_ok == len(results),
        "seconds": round(seconds, 1),
        "reference_seconds": round(ref_seconds, 1),
        "reference_reconnects": sum(r.connections for r in reference),
    }


def run_mode(mode: str, tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    gen = private_database(PG) if mode == "distributed" else None
    database_url = next(gen) if gen is not None else None
    server = launch(mode, tmp, database_url=database_url, redis_url=REDIS if database_url else None)
    try:
        app = import_app(server, tmp, chain_dsl(args.nodes), "torture")
        return asyncio.run(torture(server.base_url, app, args))
    finally:
        server.stop_all()
        if gen is not None:
            gen.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--mode", choices=("embedded", "distributed", "both"), default="both")
    args = parser.parse_args()
    modes = ("embedded", "distributed") if args.mode == "both" else (args.mode,)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in modes:
            results[mode] = run_mode(mode, Path(tmp) / mode, args)
    for mode, r in results.items():
        print(
            f"{mode:<11} {r['runs']} runs, {r['frames']} stored frames, {r['cuts']} cuts, "
            f"{r['reconnects']} reconnects: lost {r['lost']}, duplicated {r['duplicated']}, "
            f"runs not byte-identical {r['runs_not_identical']}, "
            f"one terminal per run: {r['one_terminal_per_run']}; followed in {r['seconds']} s through the "
            f"proxy vs {r['reference_seconds']} s directly (x{r['seconds'] / r['reference_seconds']:.2f})"
        )
    out = ROOT / "bench" / "results" / f"torture-{datetime.date.today().isoformat()}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"(written to {out.relative_to(ROOT)})")


if __name__ == "__main__":
    main()

"""Streaming load (streaming spec §10, issue 5 must-show 4), all in one run on this machine:

* events/s from one run to one SSE client, through Redis and through memory, next to reference A
  (bare sse-starlette, ``ref_bare_sse.py``) and reference B (bare XADD/XREAD, ``ref_xadd_follow.py``)
  measured in the same run; the ratios are the figures (G1, G2, G3);
* idle SSE clients one API process holds, with its Redis connections and RSS per client (G9-G11),
  and the Redis connections with 1 and with 1000 clients on one run (scenario 25);
* first-event latency: run request sent → ``workflow_started`` received (G6), next to a bare
  ``GET /_health`` round trip.

``uv run python bench/stream_load.py [--events N] [--idle N] [--starts N]``. Needs PostgreSQL and
Redis (``TEST_DATABASE_URL``, ``TEST_REDIS_URL``). Writes ``bench/results/stream_load-<date>.json``.
Internal: ``python bench/stream_load.py _serve`` is the embedded server with a producer route.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "src"), str(ROOT / "bench")]

import httpx  # noqa: E402
from fastapi import Request  # noqa: E402
from tests.streaming.support import chain_dsl, private_database  # noqa: E402
from tests.support.servers import LiveServer, free_port, server_env, sluice_cmd  # noqa: E402

import ref_bare_sse  # noqa: E402
import ref_xadd_follow  # noqa: E402

PG = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
TEXT = "x" * 120  # a ~200-byte text_chunk payload
BENCH_ENV = {
    "SLUICE_STREAMING__SSE_MAX_STREAMS_PER_PROCESS": "30000",
    "SLUICE_STREAMING__SSE_MAX_STREAMS_PER_RUN": "30000",
    "SLUICE_STREAMING__SSE_PING_INTERVAL_SECONDS": "10",
    "SLUICE_LOG_LEVEL": "error",
}


# -- the embedded bench server: Sluice's app plus a producer route (memory log lives in-process) ------


def serve_embedded() -> None:
    import uvicorn

    from sluice.adapters.sql.migrate import upgrade
    from sluice.api.app import create_app
    from sluice.runtime.ports import NewEntry
    from sluice.runtime.writer import RunEventWriter
    from sluice.settings import load_settings

    settings = load_settings()
    upgrade(settings.sql_url)
    app = create_app(settings)

    @app.post("/_bench/produce", include_in_schema=False)
    async def produce(request: Request, run: str, task: str, n: int) -> dict[str, float]:
        container = request.app.state.container
        seconds = await write_events(RunEventWriter, NewEntry, container.event_log, run, task, n)
        return {"append_seconds": seconds}

    uvicorn.run(app, host="127.0.0.1", port=settings.port, log_level="error")


async def write_events(writer_cls: Any, entry_cls: Any, event_log: Any, run: str, task: str, n: int) -> float:
    """``n`` text chunks then ``workflow_finished``, through the runtime's own writer (fence 1)."""
    writer = writer_cls(event_log, run, 1)
    started = time.perf_counter()
    for i in range(n):
        body = {
            "event": "text_chunk",
            "task_id": task,
            "workflow_run_id": run,
            "data": {"text": TEXT, "n": i},
        }
        await writer.emit_entry(entry_cls("text_chunk", json.dumps(body).encode()))
    end = {"event": "workflow_finished", "task_id": task, "workflow_run_id": run, "data": {"status": "bench"}}
    await writer.emit_entry(entry_cls("workflow_finished", json.dumps(end).encode(), "wf-bench"))
    await writer.flush()
    await writer.close()
    return time.perf_counter() - started


# -- servers --------------------------------------------------------------------------------------------


def start_server(mode: str, tmp: Path, database_url: str | None) -> LiveServer:
    tmp.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = server_env(
        mode,
        tmp / "data",
        database_url,
        REDIS if mode == "distributed" else None,
        f"b{uuid.uuid4().hex[:8]}",
        port,
    )
    env.update(BENCH_ENV)
    server = LiveServer(mode, f"http://127.0.0.1:{port}", env, tmp)
    server.cli("db", "upgrade")
    log = open(tmp / "serve.log", "ab")
    if mode == "embedded":
        cmd = [sys.executable, str(ROOT / "bench" / "stream_load.py"), "_serve"]
    else:
        cmd = sluice_cmd("serve")  # an API process alone: runs stay queued, nothing else writes
    server.procs["serve"] = subprocess.Popen(cmd, env=env, stdout=log, stderr=log)
    server.wait_healthy(timeout=180)
    return server


def new_app(server: LiveServer, tmp: Path, dsl: str) -> tuple[str, dict[str, str]]:
    path = tmp / f"{uuid.uuid4().hex}.yml"
    path.write_text(dsl)
    app_id = server.import_app(path)
    return app_id, {"Authorization": f"Bearer {server.create_key(app_id)}"}


async def open_run(client: httpx.AsyncClient, headers: dict[str, str]) -> tuple[str, str, str, float]:
    """Start a streaming run; (run id, task id, offset of workflow_started, seconds to that frame)."""
    body = {"inputs": {"query": "bench"}, "response_mode": "streaming", "user": "u1"}
    started = time.perf_counter()
    async with client.stream("POST", "/v1/workflows/run", json=body, headers=headers) as resp:
        buffer = b""
        async for chunk in resp.aiter_raw():
            buffer += chunk
            if b"workflow_started" in buffer and b"\n\n" in buffer[buffer.index(b"workflow_started") :]:
                break
        elapsed = time.perf_counter() - started
        offset = buffer.split(b"id: ", 1)[1].split(b"\n", 1)[0].decode()
        return resp.headers["x-workflow-run-id"], resp.headers["x-task-id"], offset, elapsed


def events_path(task: str) -> str:
    return f"/v1/workflow/{task}/events?user=u1"


# -- throughput -----------------------------------------------------------------------------------------


async def throughput(server: LiveServer, headers: dict[str, str], n: int, producer: str) -> dict[str, float]:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=120) as client:
        run, task, offset, _ = await open_run(client, headers)
    port = int(server.base_url.rsplit(":", 1)[1])
    reader = asyncio.create_task(
        ref_bare_sse.read_frames(
            port, events_path(task), n + 1, b"workflow_finished", {**headers, "Last-Event-ID": offset}
        )
    )
    await asyncio.sleep(1.0)  # subscribed and idle
    if producer == "server":
        async with httpx.AsyncClient(base_url=server.base_url, timeout=300) as client:
            resp = await client.post("/_bench/produce", params={"run": run, "task": task, "n": n})
            assert resp.status_code == 200, resp.text
            append = float(resp.json()["append_seconds"])
    else:
        import redis.asyncio as aioredis

        from sluice.adapters.redis.event_log import RedisEventLog
        from sluice.runtime.ports import NewEntry
        from sluice.runtime.writer import RunEventWriter

        client_r = aioredis.Redis.from_url(REDIS)
        log = RedisEventLog(client_r, REDIS, prefix=server.env["SLUICE_STREAMING__REDIS_KEY_PREFIX"])
        append = await write_events(RunEventWriter, NewEntry, log, run, task, n)
        await client_r.aclose()
    seen, elapsed = await reader
    return {"events_per_s": seen / elapsed, "frames": seen, "append_per_s": (n + 1) / append}


# -- idle clients --------------------------------------------------------------------------------------


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def redis_connections(pid: int) -> int:
    out = subprocess.run(
        ["ss", "-tnpH", "state", "established", "dst", ":6379"], capture_output=True, text=True
    ).stdout
    return sum(f"pid={pid}," in line for line in out.splitlines())


class Idle:
    """One idle SSE client on a raw socket: it reads pings and records when they arrive."""

    def __init__(self) -> None:
        self.pings: list[float] = []
        self.writer: asyncio.StreamWriter | None = None
        self.task: asyncio.Task[None] | None = None

    async def open(self, port: int, path: str, headers: dict[str, str]) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        self.writer = writer
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\n{head}\r\n".encode())
        await writer.drain()
        await reader.readuntil(b"event: ping\n\n")  # headers and the prelude
        self.task = asyncio.create_task(self._read(reader))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while chunk := await reader.read(4096):
            self.pings += [time.monotonic()] * chunk.count(b"event: ping")

    def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
        if self.writer is not None:
            self.writer.transport.abort()


async def idle_clients(server: LiveServer, headers: dict[str, str], total: int) -> dict[str, Any]:
    pid = server.procs["serve"].pid
    port = int(server.base_url.rsplit(":", 1)[1])
    async with httpx.AsyncClient(base_url=server.base_url, timeout=120) as client:
        _, task, offset, _ = await open_run(client, headers)
    path, hdrs = events_path(task), {**headers, "Last-Event-ID": offset}
    await asyncio.sleep(1)
    base_rss, base_redis = rss_kib(pid), redis_connections(pid)
    clients: list[Idle] = []
    redis_at: dict[str, int] = {"0": base_redis}
    started = time.monotonic()
    for target in sorted({1, min(1000, total), total}):  # Redis connections at 1 and 1000 clients
        while len(clients) < target:
            batch = [Idle() for _ in range(min(250, target - len(clients)))]
            results = await asyncio.gather(*(c.open(port, path, hdrs) for c in batch), return_exceptions=True)
            clients += [c for c, r in zip(batch, results, strict=True) if r is None]
            errors = [r for r in results if r is not None]
            if errors:
                print(f"  {len(errors)} connections failed at {len(clients)}: {errors[0]!r}")
                target = len(clients)
                break
        await asyncio.sleep(1)
        redis_at[str(len(clients))] = redis_connections(pid)
    opened = time.monotonic() - started
    await asyncio.sleep(2)
    held_rss = rss_kib(pid)
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    await asyncio.sleep(21)  # two ping intervals
    cpu = (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0)
    gaps = [b - a for c in clients for a, b in zip(c.pings, c.pings[1:], strict=False)]
    redis_held = redis_connections(pid)
    for c in clients:
        c.close()
    return {
        "clients": len(clients),
        "open_seconds": round(opened, 1),
        "rss_per_client_kib": round((held_rss - base_rss) / max(1, len(clients)), 1),
        "server_rss_mib": round(held_rss / 1024, 1),
        "redis_connections": {
            "before": base_redis,
            **{str(k): v for k, v in redis_at.items()},
            "held": redis_held,
        },
        "idle_cpu_share": round(cpu, 3),
        "ping_gap_max_s": round(max(gaps), 2) if gaps else None,
        "pinged_clients": sum(bool(c.pings) for c in clients),
    }


# -- first-event latency ---------------------------------------------------------------------------------


async def first_event(server: LiveServer, headers: dict[str, str], starts: int) -> dict[str, float]:
    latencies: list[float] = []
    health: list[float] = []
    async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as client:
        for _ in range(5):
            await open_run(client, headers)  # warm up
        for _ in range(starts):
            tick = time.perf_counter()
            t = time.perf_counter()
            await client.get("/_health")
            health.append(time.perf_counter() - t)
            latencies.append((await open_run(client, headers))[3])
            await asyncio.sleep(max(0.0, 0.05 - (time.perf_counter() - tick)))  # about 20 starts/s
    return {
        "p50_ms": round(1000 * statistics.median(latencies), 1),
        "p99_ms": round(1000 * percentile(latencies, 0.99), 1),
        "health_p50_ms": round(1000 * statistics.median(health), 1),
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# -- main -------------------------------------------------------------------------------------------------


async def bench_mode(
    mode: str, tmp: Path, database_url: str | None, args: argparse.Namespace
) -> dict[str, Any]:
    server = start_server(mode, tmp, database_url)
    try:
        _, slow = new_app(server, tmp, chain_dsl(2, slow={1: 3600}))
        _, quick = new_app(server, tmp, chain_dsl(1))
        out: dict[str, Any] = {}
        out["throughput"] = await throughput(
            server, slow, args.events, "server" if mode == "embedded" else "worker"
        )
        out["first_event"] = await first_event(server, quick, args.starts)
        if mode == "distributed":
            out["idle"] = await idle_clients(server, slow, args.idle)
        return out
    finally:
        server.stop_all()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--idle", type=int, default=10_000)
    parser.add_argument("--starts", type=int, default=100)
    args = parser.parse_args()
    ref_a = ref_bare_sse.measure(args.events)
    ref_b = ref_xadd_follow.measure(REDIS, min(args.events, 10_000))
    result: dict[str, Any] = {
        "ref_a_bare_sse_events_per_s": round(ref_a),
        "ref_b_xadd_follow_events_per_s": round(ref_b),
    }
    with tempfile.TemporaryDirectory() as tmp:
        result["memory"] = asyncio.run(bench_mode("embedded", Path(tmp) / "e", None, args))
        print("memory:", json.dumps(result["memory"]), flush=True)
        gen = private_database(PG)
        database_url = next(gen)
        try:
            result["redis"] = asyncio.run(bench_mode("distributed", Path(tmp) / "d", database_url, args))
        finally:
            gen.close()
    report(result)


def report(r: dict[str, Any]) -> None:
    a, b = r["ref_a_bare_sse_events_per_s"], r["ref_b_xadd_follow_events_per_s"]
    mem, red = r["memory"], r["redis"]

    def line(label: str, value: str, note: str = "") -> None:
        print(f"{label:<46} {value:>16}  {note}")

    line("reference A  bare sse-starlette, one client", f"{a:,} ev/s")
    line("reference B  bare XADD + XREAD follower", f"{b:,} ev/s")
    g1, g2 = red["throughput"]["append_per_s"], red["throughput"]["events_per_s"]
    g3 = mem["throughput"]["events_per_s"]
    line("G1 append, one run, Redis (writer only)", f"{g1:,.0f} ev/s", f"= {g1 / b:.2f} x B (target >= 4)")
    line("G2 one run -> one SSE client, Redis", f"{g2:,.0f} ev/s", f"= {g2 / b:.2f} x B (target >= 2)")
    line("G3 one run -> one SSE client, memory", f"{g3:,.0f} ev/s", f"= {g3 / a:.2f} x A (target >= 0.4)")
    for name, part in (("memory", mem), ("Redis", red)):
        fe = part["first_event"]
        line(
            f"G6 run request -> workflow_started, {name}",
            f"p50 {fe['p50_ms']:.1f} ms",
            f"p99 {fe['p99_ms']:.1f} ms (reference GET /_health p50 {fe['health_p50_ms']:.1f} ms)",
        )
    idle = red["idle"]
    line("G9 idle SSE clients held by one API process", f"{idle['clients']:,}", "(target >= 10,000)")
    line("   opened in", f"{idle['open_seconds']} s")
    line("   API process CPU while they idle", f"{100 * idle['idle_cpu_share']:.1f} %", "of one core")
    line("   longest gap between pings", f"{idle['ping_gap_max_s']} s", "(interval 10 s)")
    line(
        "G10 RSS per idle client",
        f"{idle['rss_per_client_kib']} KiB",
        f"(server {idle['server_rss_mib']} MiB)",
    )
    line("G11 API process Redis connections", "", f"by clients held: {idle['redis_connections']}")
    stamp = datetime.date.today().isoformat()
    out = ROOT / "bench" / "results" / f"stream_load-{stamp}.json"
    out.write_text(json.dumps(r, indent=2) + "\n")
    print(f"(written to {out.relative_to(ROOT)})")


if __name__ == "__main__":
    if sys.argv[1:2] == ["_serve"]:
        serve_embedded()
    else:
        main()

"""Helpers of the streaming tests: an incremental SSE parser, DSL generators, server launchers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy import make_url

from tests.support.servers import LiveServer, free_port, server_env
from tests.support.services import unique_name

FAST = {
    # a streaming test server: short intervals so pings, leases and the reaper show within seconds
    "SLUICE_STREAMING__SSE_PING_INTERVAL_SECONDS": "1",
    "SLUICE_STREAMING__HEARTBEAT_INTERVAL_SECONDS": "1",
    "SLUICE_STREAMING__LEASE_TTL_SECONDS": "3",
    "SLUICE_STREAMING__REAPER_INTERVAL_SECONDS": "0.5",
    "SLUICE_STREAMING__WORKER_DRAIN_SECONDS": "1",
    "SLUICE_STREAMING__ENQUEUE_GRACE_SECONDS": "2",
    "SLUICE_STREAMING__OUTBOX_RETRY_AFTER_SECONDS": "1",
    "SLUICE_STREAMING__HUB_LINGER_SECONDS": "1",
}


@dataclass
class Frame:
    event: str | None = None
    id: str | None = None
    retry: int | None = None
    data: Any = None
    raw: bytes = b""

    @property
    def name(self) -> str | None:
        """The Dify event name of a data frame, else the SSE event field (ping, sluice_reconnect)."""
        if isinstance(self.data, dict):
            return str(self.data.get("event"))
        return self.event


def parse_block(block: bytes) -> Frame:
    frame = Frame(raw=block)
    for line in block.split(b"\n"):
        name, _, value = line.decode().partition(": ")
        if name == "event":
            frame.event = value
        elif name == "id":
            frame.id = value
        elif name == "retry":
            frame.retry = int(value)
        elif name == "data":
            frame.data = json.loads(value)
    return frame


@dataclass
class SSEParser:
    """Frames from a byte stream cut anywhere: an incomplete trailing frame stays buffered."""

    buffer: bytes = b""
    frames: list[Frame] = field(default_factory=list)

    def feed(self, chunk: bytes) -> list[Frame]:
        assert b"\r" not in chunk
        *blocks, self.buffer = (self.buffer + chunk).split(b"\n\n")
        out = [parse_block(block) for block in blocks if block]
        self.frames += out
        return out


def data_frames(frames: list[Frame]) -> list[Frame]:
    return [f for f in frames if f.data is not None and f.event is None]


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# -- DSL generators -------------------------------------------------------------------------------------


def chain_dsl(nodes: int, *, name: str = "Chain", slow: dict[int, float] | None = None) -> str:
    """start → n1 → … → nN → end: template nodes, except that ``slow`` maps positions to code
    nodes sleeping that many seconds. Every node passes its input on as ``output``."""
    slow = slow or {}
    lines = [
        "version: 0.6.0",
        "kind: app",
        f"app: {{name: {name}, mode: workflow}}",
        "workflow:",
        "  features: {}",
        "  graph:",
        "    nodes:",
        "      - id: start",
        "        data:",
        "          type: start",
        "          title: Start",
        "          variables:",
        "            - {variable: query, label: Query, type: paragraph, required: false}",
    ]
    previous, selector = "start", "[start, query]"
    edges: list[str] = []
    for i in range(1, nodes + 1):
        node = f"n{i}"
        if i in slow:
            lines += code_node(node, selector, slow[i])
        else:
            lines += [
                f"      - id: {node}",
                "        data:",
                "          type: template-transform",
                f"          title: Step {i}",
                f"          variables: [{{variable: x, value_selector: {selector}}}]",
                f'          template: "{{{{ x }}}}{i % 10}"',
            ]
        edges.append(f"      - {{id: e{i}, source: {previous}, target: {node}}}")
        previous, selector = node, f"[{node}, output]"
    lines += [
        "      - id: end",
        "        data:",
        "          type: end",
        "          title: End",
        f"          outputs: [{{variable: text, value_selector: {selector}}}]",
        "    edges:",
        *edges,
        f"      - {{id: e_end, source: {previous}, target: end}}",
    ]
    return "\n".join(lines) + "\n"


def code_node(node: str, selector: str, seconds: float) -> list[str]:
    """A Python code node that sleeps ``seconds`` and passes its input on as ``output``."""
    return [
        f"      - id: {node}",
        "        data:",
        "          type: code",
        f"          title: Sleep {node}",
        "          code_language: python3",
        "          code: |",
        "            import time",
        "            def main(x):",
        f"                time.sleep({seconds})",
        "                return {'output': str(x or '') + '.'}",
        f"          variables: [{{variable: x, value_selector: {selector}}}]",
        "          outputs: {output: {type: string, children: null}}",
    ]


# -- servers -----------------------------------------------------------------------------------------------


def private_database(server_url: str) -> Iterator[str]:
    """A PostgreSQL database of its own (each reaper must only see its own server's runs)."""
    url = make_url(server_url)
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    name = unique_name("sluice_stream")

    async def execute(sql: str) -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(execute(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def launch(
    mode: str,
    tmp: Path,
    *,
    database_url: str | None = None,
    redis_url: str | None = None,
    env: dict[str, str] | None = None,
    workers: int = 1,
) -> LiveServer:
    tmp.mkdir(parents=True, exist_ok=True)
    port = free_port()
    base = server_env(mode, tmp / "data", database_url, redis_url, unique_name("s"), port)
    base.update(FAST)
    base.update(env or {})
    server = LiveServer(mode, f"http://127.0.0.1:{port}", base, tmp)
    server.cli("db", "upgrade")
    server.start("serve", "serve")
    if mode == "distributed":
        for i in range(workers):
            server.start(f"worker{i}", "worker")
    try:
        server.wait_healthy(timeout=120)  # other test sessions may share the two cores
    except BaseException:
        server.stop_all()
        raise
    return server


@dataclass
class App:
    server: LiveServer
    app_id: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return auth(self.key)


def import_app(server: LiveServer, tmp: Path, dsl: str, name: str) -> App:
    path = tmp / f"{name}-{unique_name('dsl')}.yml"
    path.write_text(dsl)
    app_id = server.import_app(path)
    return App(server, app_id, server.create_key(app_id))


def start_stream(
    client: httpx.Client, app: App, inputs: dict[str, Any] | None = None, user: str = "u1"
) -> tuple[str, str, list[Frame]]:
    """POST a streaming run, read it to its end; (run id, task id, frames)."""
    body = {"inputs": inputs or {}, "response_mode": "streaming", "user": user}
    parser = SSEParser()
    with client.stream("POST", "/v1/workflows/run", json=body, headers=app.headers) as resp:
        assert resp.status_code == 200, resp.read()
        for chunk in resp.iter_raw():
            parser.feed(chunk)
    return resp.headers["x-workflow-run-id"], resp.headers["x-task-id"], parser.frames


def events_url(task_id: str) -> str:
    return f"/v1/workflow/{task_id}/events"


def read_events(
    client: httpx.Client, app: App, task_id: str, params: dict[str, Any] | None = None, **kw: Any
) -> tuple[httpx.Response, list[Frame]]:
    parser = SSEParser()
    query = {"user": "u1", **(params or {})}
    with client.stream("GET", events_url(task_id), params=query, headers={**app.headers, **kw}) as resp:
        if resp.status_code != 200:
            resp.read()
            return resp, []
        for chunk in resp.iter_raw():
            parser.feed(chunk)
    return resp, parser.frames


# -- torture: resume through a proxy that cuts every connection ----------------------------------------


@dataclass
class Resumed:
    """One run followed through cuts: every data frame received, and how often it reconnected."""

    task_id: str
    frames: list[Frame] = field(default_factory=list)
    connections: int = 0
    controls: list[str] = field(default_factory=list)


async def follow_through_cuts(
    direct: httpx.AsyncClient, proxied: httpx.AsyncClient, app: App, inputs: dict[str, Any]
) -> Resumed:
    """POST a streaming run (directly, so its ids are known), leave after ``workflow_started``, then
    follow it through the cutting proxy with ``Last-Event-ID`` until ``workflow_finished``."""
    body = {"inputs": inputs, "response_mode": "streaming", "user": "u1"}
    parser = SSEParser()
    async with direct.stream("POST", "/v1/workflows/run", json=body, headers=app.headers) as resp:
        assert resp.status_code == 200
        result = Resumed(resp.headers["x-task-id"])
        async for chunk in resp.aiter_raw():
            if data_frames(parser.feed(chunk)):
                break
    result.frames += data_frames(parser.frames)[:1]
    while result.frames[-1].data["event"] != "workflow_finished":
        result.connections += 1
        parser = SSEParser()
        headers = {**app.headers, "Last-Event-ID": str(result.frames[-1].id)}
        try:
            async with proxied.stream(
                "GET", events_url(result.task_id), params={"user": "u1"}, headers=headers
            ) as resp:
                assert resp.status_code == 200, await resp.aread()
                async for chunk in resp.aiter_raw():
                    for frame in parser.feed(chunk):
                        if frame.event == "sluice_reconnect":
                            result.controls.append(str(frame.data["reason"]))
                        elif frame.data is not None:
                            result.frames.append(frame)
        except (httpx.TransportError, httpx.StreamError):
            pass  # cut: resume from the last complete frame
    return result

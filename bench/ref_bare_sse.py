"""Reference A (streaming spec §10): FastAPI + sse-starlette sending pre-encoded ~200-byte frames
to one loopback client. ``python bench/ref_bare_sse.py [events]`` prints events/s; the function
``measure`` is what ``bench/stream_load.py`` calls to put its figures next to this one."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator

FRAME = (
    b"id: 1767052800123-4\ndata: " + b'{"event":"text_chunk","data":{"text":"' + b"x" * 140 + b'"}}' + b"\n\n"
)


def app() -> object:
    from fastapi import FastAPI
    from sse_starlette import EventSourceResponse

    api = FastAPI()

    @api.get("/stream")
    async def stream(n: int = 100_000) -> EventSourceResponse:
        async def frames() -> AsyncIterator[bytes]:
            for _ in range(n):
                yield FRAME

        return EventSourceResponse(frames(), sep="\n", ping=600)

    return api


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def read_frames(
    port: int, path: str, count: int, end: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, float]:
    """Frames received over a raw socket (no client library in the way) and the seconds from the
    first one to the last; stops after ``count`` frames or a chunk holding ``end``."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 22)
    head = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n{head}\r\n".encode())
    await writer.drain()
    await reader.readuntil(b"\r\n\r\n")
    await reader.readuntil(b"event: ping\n\n") if headers is not None else None  # Sluice's prelude
    seen, started, tail, last = 0, 0.0, b"", 0.0
    while seen < count:
        chunk = await reader.read(1 << 20)
        if not chunk:
            break
        last = time.perf_counter()
        if not started:
            started = last
        data = tail + chunk
        seen += data.count(b"\n\n") - tail.count(b"\n\n")
        tail = data[-1:]
        if end is not None and end in chunk:
            break
    elapsed = max(last - started, 1e-6)
    writer.close()
    return seen, elapsed


def measure(events: int = 100_000) -> float:
    """Start the reference server in a subprocess, read ``events`` frames, return events/s."""
    port = free_port()
    code = (
        "import sys; sys.path.insert(0, 'bench'); import uvicorn, ref_bare_sse; "
        f"uvicorn.run(ref_bare_sse.app(), port={port}, log_level='warning')"
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), 0.5).close()
                break
            except OSError:
                time.sleep(0.1)
        asyncio.run(read_frames(port, "/stream?n=2000", 2000))  # warm up
        seen, elapsed = asyncio.run(read_frames(port, f"/stream?n={events}", events))
        return seen / elapsed
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    print(f"bare sse-starlette: {measure(n):,.0f} events/s")

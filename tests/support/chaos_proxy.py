"""An asyncio TCP proxy that cuts every connection at a random point (streaming spec §11).

Each accepted connection is piped to the upstream server; after a random delay drawn from
``cut_after`` (seconds) both sides are aborted, wherever the bytes happen to be (mid-frame cuts
included). ``cuts`` counts connections cut while still open; connections that ended on their own
are not counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass, field


@dataclass
class ChaosProxy:
    upstream_host: str
    upstream_port: int
    cut_after: tuple[float, float] = (0.005, 0.5)
    seed: int | None = None
    cuts: int = 0
    connections: int = 0
    _server: asyncio.Server | None = None
    _rng: random.Random = field(default_factory=random.Random)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> int:
        if self.seed is not None:
            self._rng.seed(self.seed)
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        try:
            await self._serve(reader, writer)
        finally:
            self._tasks.discard(task)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(self.upstream_host, self.upstream_port)
        except OSError:
            writer.transport.abort()
            return
        pipes = [
            asyncio.ensure_future(self._pipe(reader, up_writer)),
            asyncio.ensure_future(self._pipe(up_reader, writer)),
        ]
        delay = self._rng.uniform(*self.cut_after)
        try:
            done, _ = await asyncio.wait(pipes, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
            if not done:
                self.cuts += 1
        finally:
            for pipe in pipes:
                pipe.cancel()
            await asyncio.gather(*pipes, return_exceptions=True)
            writer.transport.abort()
            up_writer.transport.abort()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()

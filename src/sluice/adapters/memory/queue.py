"""The embedded job queue: jobs run as tasks of this process, at most ``max_concurrent`` at once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping

log = logging.getLogger("sluice.queue")

Handler = Callable[..., Awaitable[None]]


class InProcessQueue:
    def __init__(self, handlers: Mapping[str, Handler], max_concurrent: int = 20) -> None:
        self._handlers = dict(handlers)
        self._slots = asyncio.Semaphore(max_concurrent)
        self._tasks: dict[str, asyncio.Task[None]] = {}

    async def enqueue(self, job_id: str, function: str, *args: str) -> None:
        if job_id in self._tasks:
            return  # one job per id, as arq
        handler = self._handlers[function]
        task = asyncio.get_running_loop().create_task(self._run(handler, args), name=job_id)
        self._tasks[job_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(job_id, None))

    async def known(self, job_id: str) -> bool:
        return job_id in self._tasks

    @property
    def pending(self) -> int:
        return len(self._tasks)

    async def _run(self, handler: Handler, args: tuple[str, ...]) -> None:
        async with self._slots:
            try:
                await handler(*args)
            except Exception:
                log.exception("job failed")

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

"""The distributed job queue: arq on Redis, behind the ``JobQueue`` port (arq is maintenance-only)."""

from __future__ import annotations

from arq.connections import ArqRedis, RedisSettings, create_pool


class ArqQueue:
    def __init__(self, pool: ArqRedis, queue_name: str) -> None:
        self._pool = pool
        self._queue_name = queue_name

    @classmethod
    async def connect(cls, redis_url: str, queue_name: str) -> ArqQueue:
        pool = await create_pool(RedisSettings.from_dsn(redis_url), default_queue_name=queue_name)
        return cls(pool, queue_name)

    async def enqueue(self, job_id: str, function: str, *args: str) -> None:
        await self._pool.enqueue_job(function, *args, _job_id=job_id, _queue_name=self._queue_name)

    async def close(self) -> None:
        await self._pool.aclose()

"""The distributed job queue: arq on Redis, behind the ``JobQueue`` port (arq is maintenance-only)."""

from __future__ import annotations

import json
from typing import Any

from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.jobs import Job, JobStatus


def dumps(value: Any) -> bytes:
    """Jobs carry ids only: JSON, never pickle (streaming spec §8.5)."""
    return json.dumps(value, default=str).encode()


def loads(data: bytes) -> Any:
    return json.loads(data)


class ArqQueue:
    def __init__(self, pool: ArqRedis, queue_name: str) -> None:
        self._pool = pool
        self._queue_name = queue_name

    @classmethod
    async def connect(cls, redis_url: str, queue_name: str) -> ArqQueue:
        pool = await create_pool(
            RedisSettings.from_dsn(redis_url),
            default_queue_name=queue_name,
            job_serializer=dumps,
            job_deserializer=loads,
        )
        return cls(pool, queue_name)

    async def enqueue(self, job_id: str, function: str, *args: str) -> None:
        await self._pool.enqueue_job(function, *args, _job_id=job_id, _queue_name=self._queue_name)

    async def known(self, job_id: str) -> bool:
        job = Job(job_id, self._pool, _queue_name=self._queue_name, _deserializer=loads)
        status = await job.status()
        return status is not JobStatus.not_found

    async def close(self) -> None:
        await self._pool.aclose()

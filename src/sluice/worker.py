"""The distributed worker: an arq worker whose one job runs one segment try.

arq only delivers jobs here: ``max_tries=1`` (arq counts crash re-picks; retries are the reaper's,
with a new try and job id), no arq retries or aborts, JSON arguments (ids only). Leases, the stop
channel and the reaper live in the container. On SIGTERM arq stops picking jobs, waits
``WORKER_DRAIN_SECONDS`` for running tries, then cancels the rest, which hand their lease back.
"""

from __future__ import annotations

from typing import Any

from arq.connections import RedisSettings
from arq.worker import Worker, func

from sluice.adapters.arq.queue import dumps, loads
from sluice.bootstrap import Container
from sluice.services.runs import RUN_JOB
from sluice.settings import Settings


def build_worker(settings: Settings) -> Worker:
    assert settings.redis_url is not None
    st = settings.streaming

    async def startup(ctx: dict[str, Any]) -> None:
        ctx["container"] = await Container.start(settings, role="worker")

    async def shutdown(ctx: dict[str, Any]) -> None:
        container: Container | None = ctx.get("container")
        if container is not None:
            await container.close()

    async def run_segment_try(ctx: dict[str, Any], try_id: str) -> None:
        runner = ctx["container"].runner
        await runner.run_try(try_id)

    return Worker(
        functions=[func(run_segment_try, name=RUN_JOB, max_tries=1)],
        on_startup=startup,
        on_shutdown=shutdown,
        redis_settings=RedisSettings.from_dsn(settings.redis_url),
        queue_name=st.arq_queue_name,
        max_jobs=st.worker_max_jobs,
        poll_delay=st.arq_poll_delay_seconds,
        keep_result=st.arq_keep_result_seconds,
        job_timeout=st.workflow_max_execution_time + 60,
        health_check_interval=st.arq_health_check_interval_seconds,
        retry_jobs=False,
        allow_abort_jobs=False,
        handle_signals=True,
        job_completion_wait=int(st.worker_drain_seconds),
        job_serializer=dumps,
        job_deserializer=loads,
    )

"""The distributed worker: an arq worker whose one job runs a run segment."""

from __future__ import annotations

from typing import Any

from arq.connections import RedisSettings
from arq.worker import Worker, func

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

    async def run_segment(ctx: dict[str, Any], run_id: str) -> None:
        runner = ctx["container"].runner
        await runner.run(run_id)

    return Worker(
        functions=[func(run_segment, name=RUN_JOB, max_tries=1)],
        on_startup=startup,
        on_shutdown=shutdown,
        redis_settings=RedisSettings.from_dsn(settings.redis_url),
        queue_name=st.arq_queue_name,
        max_jobs=st.worker_max_jobs,
        poll_delay=st.arq_poll_delay_seconds,
        keep_result=st.arq_keep_result_seconds,
        job_timeout=st.workflow_max_execution_time + 60,
        retry_jobs=False,
        allow_abort_jobs=False,
        handle_signals=True,
    )

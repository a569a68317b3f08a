"""Server-Sent Events responses: pre-encoded frames, LF line ends, a prelude, pings."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi.responses import StreamingResponse

from sluice.services.streams import PING, StreamService, frame, prelude


def sse_response(
    streams: StreamService,
    run_id: str,
    task_id: str,
    *,
    after: str = "0-0",
    retry_ms: int = 1000,
    emit_ids: bool = True,
) -> StreamingResponse:
    async def body() -> AsyncIterator[bytes]:
        yield prelude(retry_ms)
        async for entry in streams.follow(run_id, after):
            yield PING if entry is None else frame(entry, emit_ids)

    headers = {
        "Cache-Control": "no-cache",
        "X-Accel-Buffering": "no",
        "Connection": "keep-alive",
        "X-Workflow-Run-ID": run_id,
        "X-Task-ID": task_id,
    }
    return StreamingResponse(body(), media_type="text/event-stream; charset=utf-8", headers=headers)

"""Server-Sent Events responses (streaming spec §1.3, §1.4).

A slim ASGI response instead of sse-starlette's: frames arrive pre-encoded (LF line ends, one
``data:`` line per event) from ``RunStream.chunks()``; pings come from the hub ticker, so the only
per-connection task besides the request is the disconnect watcher. A write blocked longer than
``SSE_SEND_TIMEOUT_SECONDS`` ends the connection (a half-open peer shows only this way).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from sluice.services.streams import RunStream, StreamService

log = logging.getLogger("sluice.api.sse")

MEDIA_TYPE = "text/event-stream; charset=utf-8"


def sse_headers(run_id: str, task_id: str) -> dict[str, str]:
    return {
        "Cache-Control": "no-cache",
        "X-Accel-Buffering": "no",
        "Connection": "keep-alive",
        "X-Workflow-Run-ID": run_id,
        "X-Task-ID": task_id,
    }


class SSEResponse(Response):
    media_type = MEDIA_TYPE

    def __init__(self, stream: RunStream) -> None:  # no body, so no Content-Length (as StreamingResponse)
        self.status_code = 200
        self.background = None
        self.init_headers(sse_headers(stream.run_id, stream.task_id))
        self.stream = stream
        self.send_timeout = stream.s.send_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        stream = self.stream
        watcher = asyncio.ensure_future(self._watch(receive))
        try:
            await send(
                {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
            )
            async for chunk in stream.chunks():
                async with asyncio.timeout(self.send_timeout):
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            if not stream.gone:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except TimeoutError:
            log.warning(
                "run %s: a client write blocked over %.0fs; closing", stream.run_id, self.send_timeout
            )
        except OSError:  # the peer went away mid-write
            pass
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            await stream.aclose()

    async def _watch(self, receive: Receive) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.stream.abort()
                return


def sse_response(
    streams: StreamService,
    run_id: str,
    task_id: str,
    *,
    after: str = "0-0",
    retry_ms: int = 1000,
    emit_ids: bool = True,
) -> SSEResponse:
    """A run's stream from ``after`` (a run POST's own: ``0-0``), replayed then followed live.
    Reconnect routes should rather pass the run row to ``StreamService.open`` so the decision
    procedure (snapshots, finished runs) applies. ``retry_ms`` and ``emit_ids`` are process
    settings the stream service already holds; they stay in the signature for existing callers."""
    return SSEResponse(streams.open(run_id, task_id, after=None if after == "0-0" else after))

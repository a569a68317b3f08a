"""A small, real OpenAI-compatible HTTP server for tests: scripted replies streamed as chunked
SSE, with delays, failures and malformed chunks. Runs uvicorn in a background thread."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.support.servers import free_port


@dataclass
class Reply:
    """One scripted answer. ``chunks`` are text deltas; ``status`` ≠ 200 answers an error."""

    chunks: list[str] = field(default_factory=lambda: ["Hello", "!"])
    reasoning: list[str] = field(default_factory=list)
    delay_s: float = 0.0
    first_delay_s: float = 0.0
    status: int = 200
    retry_after: str | None = None
    malformed_after: int | None = None
    tool_call: dict[str, Any] | None = None
    usage: tuple[int, int] = (10, 5)
    stream: bool = True


class FakeOpenAI:
    def __init__(self, api_key: str = "sk-test") -> None:
        self.api_key = api_key
        self.replies: deque[Reply] = deque()
        self.default = Reply()
        self.requests: list[dict[str, Any]] = []
        self.chunk_sent_at: list[float] = []
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        app = Starlette(routes=[Route("/v1/chat/completions", self._chat, methods=["POST"])])
        self._server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fake OpenAI server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(5)

    def script(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    async def _chat(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(body)
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return JSONResponse({"error": {"message": "Incorrect API key provided"}}, status_code=401)
        reply = self.replies.popleft() if self.replies else self.default
        if reply.status != 200:
            headers = {"Retry-After": reply.retry_after} if reply.retry_after else None
            return JSONResponse({"error": {"message": f"scripted {reply.status}"}}, reply.status, headers)
        if not reply.stream:
            message = {"role": "assistant", "content": "".join(reply.chunks)}
            return JSONResponse(
                {
                    "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                    "usage": _usage(reply),
                }
            )
        return StreamingResponse(self._events(reply, body.get("model", "")), media_type="text/event-stream")

    async def _events(self, reply: Reply, model: str) -> AsyncIterator[bytes]:
        def frame(delta: dict[str, Any], finish: str | None = None) -> bytes:
            chunk = {
                "id": "chatcmpl-1",
                "object": "chat.completion.chunk",
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            return f"data: {json.dumps(chunk)}\n\n".encode()

        await asyncio.sleep(reply.first_delay_s)
        yield frame({"role": "assistant", "content": ""})
        for text in reply.reasoning:
            yield frame({"reasoning_content": text})
        for i, text in enumerate(reply.chunks):
            if reply.malformed_after is not None and i == reply.malformed_after:
                yield b"data: {not json\n\n"
                return
            if i:
                await asyncio.sleep(reply.delay_s)
            self.chunk_sent_at.append(time.perf_counter())
            yield frame({"content": text})
        if reply.tool_call is not None:
            call = {
                "index": 0,
                "id": "call_1",
                "type": "function",
                "function": {
                    "name": reply.tool_call["name"],
                    "arguments": json.dumps(reply.tool_call["arguments"]),
                },
            }
            yield frame({"tool_calls": [call]})
        yield frame({}, "tool_calls" if reply.tool_call else "stop")
        yield f"data: {json.dumps({'choices': [], 'usage': _usage(reply)})}\n\n".encode()
        yield b"data: [DONE]\n\n"


def _usage(reply: Reply) -> dict[str, int]:
    prompt, completion = reply.usage
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

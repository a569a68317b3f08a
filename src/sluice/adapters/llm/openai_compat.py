"""An OpenAI-compatible ``POST /chat/completions`` client (``stream: true``) over httpx.

Retries 429 and 5xx answers (and connection failures) before the first byte of a stream, with
exponential backoff that honours ``Retry-After``; once tokens flow, a failure is final, since a
retry would repeat text the client has already seen.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from sluice.engine.llm import ChatDelta, ChatRequest, ModelInvokeError, Usage

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    name: str
    base_url: str
    api_key: str
    timeout_s: float = 60.0
    connect_timeout_s: float = 10.0
    max_retries: int = 3
    backoff_s: float = 0.5
    max_backoff_s: float = 8.0


def request_body(request: ChatRequest) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": request.model,
        "messages": [{"role": m.role, "content": m.content} for m in request.messages],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    body.update({k: v for k, v in request.params.items() if v is not None})
    if request.response_format is not None:
        body["response_format"] = dict(request.response_format)
    if request.tools:
        body["tools"] = [dict(t) for t in request.tools]
        if request.tool_choice is not None:
            body["tool_choice"] = request.tool_choice
    return body


def _error_text(status: int, raw: bytes) -> str:
    try:
        detail = json.loads(raw)
        if isinstance(detail, Mapping):
            error = detail.get("error")
            if isinstance(error, Mapping) and error.get("message"):
                return f"Error {status}: {error['message']}"
            if isinstance(error, str):
                return f"Error {status}: {error}"
    except ValueError:
        pass
    text = raw.decode(errors="replace").strip()[:300]
    return f"Error {status}: {text or httpx.codes.get_reason_phrase(status)}"


def parse_chunk(data: str) -> ChatDelta:
    """One ``data:`` payload of the stream → a delta; anything malformed is a clear error."""
    try:
        chunk = json.loads(data)
    except ValueError as exc:
        raise ModelInvokeError(f"Malformed chunk from the model provider: {data[:200]!r}") from exc
    if not isinstance(chunk, Mapping):
        raise ModelInvokeError(f"Malformed chunk from the model provider: {data[:200]!r}")
    if isinstance(chunk.get("error"), Mapping):
        raise ModelInvokeError(f"Model provider error: {chunk['error'].get('message', chunk['error'])}")
    usage = None
    raw_usage = chunk.get("usage")
    if isinstance(raw_usage, Mapping):
        prompt = int(raw_usage.get("prompt_tokens") or 0)
        completion = int(raw_usage.get("completion_tokens") or 0)
        usage = Usage(prompt, completion, int(raw_usage.get("total_tokens") or prompt + completion))
    choices = chunk.get("choices")
    if not isinstance(choices, list):
        raise ModelInvokeError(f"Malformed chunk from the model provider (no choices): {data[:200]!r}")
    if not choices:
        return ChatDelta(usage=usage)
    choice = choices[0]
    delta = choice.get("delta") if isinstance(choice, Mapping) else None
    if not isinstance(delta, Mapping):
        raise ModelInvokeError(f"Malformed chunk from the model provider (no delta): {data[:200]!r}")
    tool_calls = delta.get("tool_calls") or ()
    return ChatDelta(
        text=str(delta.get("content") or ""),
        reasoning=str(delta.get("reasoning_content") or delta.get("reasoning") or ""),
        tool_calls=tuple(tool_calls) if isinstance(tool_calls, list) else (),
        usage=usage,
        finish_reason=choice.get("finish_reason"),
    )


class OpenAICompatibleProvider:
    def __init__(self, config: ProviderConfig, client: httpx.AsyncClient) -> None:
        self._config = config
        self._client = client

    def _timeout(self) -> httpx.Timeout:
        c = self._config
        return httpx.Timeout(c.timeout_s, connect=c.connect_timeout_s)

    def _delay(self, attempt: int, response: httpx.Response | None) -> float:
        c = self._config
        if response is not None:
            retry_after = response.headers.get("retry-after")
            if retry_after and retry_after.replace(".", "", 1).isdigit():
                return min(float(retry_after), c.max_backoff_s)
        return float(min(c.backoff_s * (2**attempt), c.max_backoff_s))

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatDelta]:
        url = self._config.base_url.rstrip("/") + "/chat/completions"
        headers = {"Authorization": f"Bearer {self._config.api_key}", "Accept": "text/event-stream"}
        body = request_body(request)
        attempt = 0
        while True:
            try:
                async with self._client.stream(
                    "POST", url, json=body, headers=headers, timeout=self._timeout()
                ) as response:
                    if response.status_code in RETRY_STATUSES and attempt < self._config.max_retries:
                        await response.aread()
                        delay = self._delay(attempt, response)
                        attempt += 1
                        await asyncio.sleep(delay)
                        continue
                    if response.status_code >= 400:
                        raise ModelInvokeError(
                            f"[{self._config.name}] "
                            + _error_text(response.status_code, await response.aread())
                        )
                    async for delta in self._deltas(response):
                        yield delta
                    return
            except httpx.TimeoutException as exc:
                raise ModelInvokeError(
                    f"[{self._config.name}] Request timed out after {self._config.timeout_s:g}s"
                ) from exc
            except (httpx.ConnectError, httpx.RemoteProtocolError) as exc:
                if attempt < self._config.max_retries:
                    await asyncio.sleep(self._delay(attempt, None))
                    attempt += 1
                    continue
                raise ModelInvokeError(f"[{self._config.name}] Connection failed: {exc}") from exc

    async def _deltas(self, response: httpx.Response) -> AsyncIterator[ChatDelta]:
        content_type = response.headers.get("content-type", "")
        if "text/event-stream" not in content_type:
            yield _whole_answer(await response.aread())
            return
        async for line in response.aiter_lines():
            line = line.strip()
            if not line or line.startswith(":") or not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                return
            yield parse_chunk(data)


def _whole_answer(raw: bytes) -> ChatDelta:
    """Some servers ignore ``stream: true`` and answer one JSON completion."""
    try:
        body = json.loads(raw)
        choice = body["choices"][0]
        message = choice["message"]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise ModelInvokeError(f"Malformed answer from the model provider: {raw[:200]!r}") from exc
    usage = body.get("usage") or {}
    return ChatDelta(
        text=str(message.get("content") or ""),
        reasoning=str(message.get("reasoning_content") or ""),
        tool_calls=tuple(message.get("tool_calls") or ()),
        usage=Usage(
            int(usage.get("prompt_tokens") or 0),
            int(usage.get("completion_tokens") or 0),
            int(usage.get("total_tokens") or 0),
        ),
        finish_reason=choice.get("finish_reason"),
    )

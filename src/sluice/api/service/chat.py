"""``/v1/chat-messages`` (service-api §5.8, §5.9): advanced-chat turns, blocking or streaming.

A chat stream is the run's own stream with Dify's chat dressing, applied frame by frame as it is
sent: ``text_chunk`` becomes ``message`` (``answer``), every event gains ``conversation_id``,
``message_id`` and ``created_at``, and ``message_end`` follows ``workflow_finished``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from sluice.api.body import end_user_arg, json_object, validate
from sluice.api.deps import AppAuthDep, ContainerDep, StreamsDep
from sluice.api.service.chat_schemas import ChatBlockingResponse, ChatMessageRequest
from sluice.api.service.schemas import ServiceApiError, SimpleResultResponse, TaskStopRequest
from sluice.api.sse import SSEResponse
from sluice.runtime.dify_events import encode, epoch
from sluice.services.chat import ChatService, NotChatApp, StartedTurn
from sluice.services.errors import ServiceUnavailable
from sluice.services.streams import RunStream

router = APIRouter(tags=["chatflows"])
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ServiceApiError} for status in (400, 401, 403, 404, 415, 429, 500, 503)
}


def chat_service(c: Any) -> ChatService:
    chat: ChatService | None = getattr(c, "chat", None)
    if chat is None:
        raise ServiceUnavailable("Chat is not available in this process.")
    return chat


@router.post(
    "/chat-messages",
    operation_id="create_chat_message",
    response_model=ChatBlockingResponse,
    responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}}, **ERRORS},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ChatMessageRequest"}}},
        }
    },
)
async def create_chat_message(
    request: Request, auth: AppAuthDep, streams: StreamsDep, c: ContainerDep
) -> Response:
    chat = chat_service(c)
    body = await json_object(request)
    user = end_user_arg(body)
    assert user is not None
    if auth.app.mode != "advanced-chat":
        raise NotChatApp()
    req = validate(ChatMessageRequest, body)
    turn = await chat.send(
        auth,
        user,
        query=req.query,
        inputs=req.inputs,
        conversation_id=req.conversation_id,
        files=body.get("files") if req.files else None,  # raw objects: `remote_url` is an alias
        auto_generate_name=req.auto_generate_name,
        workflow_id=req.workflow_id,
    )
    run = turn.run
    st = c.settings.streaming
    headers = {"X-Workflow-Run-ID": run.run_id, "X-Task-ID": run.task_id}
    if req.response_mode == "streaming":
        return SSEResponse(ChatStream(streams.open(run.run_id, run.task_id), turn))  # type: ignore[arg-type]
    final = await streams.wait_terminal(run.run_id, st.blocking_max_wait_seconds)
    data = (final or {}).get("data") or {}
    await chat.settle(turn.conversation_id)
    out = ChatBlockingResponse(
        task_id=run.task_id,
        id=turn.message_id,
        message_id=turn.message_id,
        conversation_id=turn.conversation_id,
        answer=str((data.get("outputs") or {}).get("answer") or ""),
        metadata=_metadata(data),
        created_at=epoch(turn.created_at) or 0,
    )
    return JSONResponse(out.model_dump(), headers=headers)


def _metadata(data: dict[str, Any]) -> Any:
    tokens = int(data.get("total_tokens") or 0)
    usage = {"prompt_tokens": 0, "completion_tokens": tokens, "total_tokens": tokens}
    return {"usage": {**usage, "latency": float(data.get("elapsed_time") or 0)}, "retriever_resources": []}


@router.post(
    "/chat-messages/{task_id}/stop",
    operation_id="stop_chat_message",
    response_model=SimpleResultResponse,
    responses=ERRORS,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TaskStopRequest"}}},
        }
    },
)
async def stop_chat_message(
    task_id: str, request: Request, auth: AppAuthDep, c: ContainerDep
) -> SimpleResultResponse:
    chat = chat_service(c)
    body = await json_object(request)
    user = end_user_arg(body)
    assert user is not None
    if auth.app.mode != "advanced-chat":
        raise NotChatApp()
    validate(TaskStopRequest, body)
    await chat.stop(auth, task_id, user)
    return SimpleResultResponse()


class ChatStream:
    """A ``RunStream`` whose frames are rewritten into Dify's chat events (see the module doc)."""

    def __init__(self, stream: RunStream, turn: StartedTurn) -> None:
        self._stream = stream
        self._extra = {
            "conversation_id": turn.conversation_id,
            "message_id": turn.message_id,
            "created_at": epoch(turn.created_at),
        }
        self._message_id = turn.message_id
        self._buffer = b""

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    async def chunks(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream.chunks():
            self._buffer += chunk
            frames, sep, rest = self._buffer.rpartition(b"\n\n")
            if not sep:
                continue
            self._buffer = rest
            out = b"".join(self._frame(f) for f in (frames + sep).split(b"\n\n")[:-1])
            if out:
                yield out
        if self._buffer:
            yield self._buffer

    def _frame(self, frame: bytes) -> bytes:
        lines = frame.split(b"\n")
        for i, line in enumerate(lines):
            if not line.startswith(b"data: "):
                continue
            try:
                payload = json.loads(line[6:])
            except ValueError:
                break
            if not isinstance(payload, dict) or "event" not in payload:
                break
            lines[i] = b"data: " + encode(self._rewrite(payload))
            tail = b""
            if payload.get("event") == "workflow_finished":
                tail = b"data: " + encode(self._message_end(payload)) + b"\n\n"
            return b"\n".join(lines) + b"\n\n" + tail
        return frame + b"\n\n"

    def _rewrite(self, payload: dict[str, Any]) -> dict[str, Any]:
        if payload.get("event") == "text_chunk":
            data = payload.get("data") or {}
            return {
                "event": "message",
                "task_id": payload.get("task_id"),
                "id": self._message_id,
                **self._extra,
                "answer": data.get("text", ""),
                "from_variable_selector": data.get("from_variable_selector"),
            }
        return {**payload, **self._extra}

    def _message_end(self, finished: dict[str, Any]) -> dict[str, Any]:
        data = finished.get("data") or {}
        return {
            "event": "message_end",
            "task_id": finished.get("task_id"),
            "id": self._message_id,
            **self._extra,
            "metadata": _metadata(data),
            "files": [],
        }

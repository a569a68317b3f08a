"""Prompt building shared by llm, question-classifier and parameter-extractor (§4.11):
template messages, ``{{#context#}}``, jinja2 edition, conversation memory, vision files, and
``<think>`` splitting of streamed text."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sluice.engine.llm import ChatMessage, ChatRequest, provider_name
from sluice.engine.nodes.base import NodeError, RunContext
from sluice.engine.pool import VariablePool
from sluice.engine.template import render, render_jinja
from sluice.engine.values import ABSENT, is_file, render_text, to_jsonable

DEFAULT_MEMORY_MESSAGES = 50
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
PARAM_FIELDS = ("temperature", "top_p", "max_tokens", "presence_penalty", "frequency_penalty", "stop", "seed")


@dataclass(slots=True)
class Prompt:
    """What a node resolved at start: messages, memory needs, vision files."""

    messages: list[ChatMessage]
    query: str | None = None
    conversation_id: str | None = None
    memory_limit: int = 0
    files: list[dict[str, Any]] = field(default_factory=list)


def model_config(data: Mapping[str, Any]) -> tuple[str, str, str, dict[str, Any]]:
    model = data.get("model") or {}
    if not isinstance(model, Mapping) or not model.get("provider") or not model.get("name"):
        raise NodeError("Model provider and name are required", "ModelInvokeError")
    params = model.get("completion_params") or {}
    picked = {k: params[k] for k in PARAM_FIELDS if isinstance(params, Mapping) and params.get(k) is not None}
    if "max_tokens" in picked:
        picked["max_tokens"] = int(picked["max_tokens"])
    return provider_name(str(model["provider"])), str(model["name"]), str(model.get("mode") or "chat"), picked


def _jinja_variables(data: Mapping[str, Any], pool: VariablePool) -> dict[str, Any]:
    config = data.get("prompt_config") or {}
    out: dict[str, Any] = {}
    for item in (config.get("jinja2_variables") if isinstance(config, Mapping) else None) or []:
        if isinstance(item, Mapping):
            value = pool.get(item.get("value_selector") or [])
            out[str(item.get("variable", ""))] = None if value is ABSENT else to_jsonable(value, mask=False)
    return out


def render_prompt_text(
    item: Mapping[str, Any], data: Mapping[str, Any], pool: VariablePool, context: str
) -> str:
    if item.get("edition_type") == "jinja2":
        return render_jinja(str(item.get("jinja2_text") or ""), _jinja_variables(data, pool))
    text = str(item.get("text") or "").replace("{{#context#}}", context)
    return render(text, pool)


def context_text(data: Mapping[str, Any], pool: VariablePool) -> str:
    context = data.get("context") or {}
    if not isinstance(context, Mapping) or not context.get("enabled"):
        return ""
    value = pool.get(context.get("variable_selector") or [])
    if value is ABSENT or value is None:
        return ""
    if isinstance(value, list):  # knowledge-retrieval style results: their content fields
        parts = [str(v.get("content", "")) if isinstance(v, Mapping) else render_text(v) for v in value]
        return "\n".join(p for p in parts if p)
    return render_text(value)


def memory_limit(data: Mapping[str, Any], mode: str) -> int:
    memory = data.get("memory")
    if mode != "advanced-chat" or not isinstance(memory, Mapping):
        return 0
    window = memory.get("window") or {}
    if isinstance(window, Mapping) and window.get("enabled"):
        return max(int(window.get("size") or 0), 0) * 2
    return DEFAULT_MEMORY_MESSAGES


def memory_query(data: Mapping[str, Any], pool: VariablePool) -> str | None:
    memory = data.get("memory")
    if not isinstance(memory, Mapping):
        return None
    template = memory.get("query_prompt_template") or "{{#sys.query#}}"
    return render(str(template), pool)


def vision_files(data: Mapping[str, Any], pool: VariablePool) -> list[dict[str, Any]]:
    vision = data.get("vision") or {}
    if not isinstance(vision, Mapping) or not vision.get("enabled"):
        return []
    configs = vision.get("configs") or {}
    selector = (configs.get("variable_selector") if isinstance(configs, Mapping) else None) or [
        "sys",
        "files",
    ]
    value = pool.get(selector)
    values = value if isinstance(value, list) else [value]
    return [dict(v) for v in values if is_file(v) and v.get("type") == "image"]


def conversation_id(pool: VariablePool) -> str | None:
    value = pool.get(["sys", "conversation_id"])
    return value if isinstance(value, str) and value else None


async def file_parts(
    files: list[dict[str, Any]], ctx: RunContext, detail: str = "high"
) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    for file in files:
        url = file.get("remote_url") or file.get("url")
        if file.get("transfer_method") != "remote_url" and ctx.ports.files is not None:
            content = await ctx.ports.files.read(file)
            mime = file.get("mime_type") or "image/png"
            url = f"data:{mime};base64,{base64.b64encode(content).decode()}"
        if url:
            parts.append({"type": "image_url", "image_url": {"url": url, "detail": detail}})
    return parts


async def with_memory_and_files(prompt: Prompt, ctx: RunContext) -> list[ChatMessage]:
    """Template messages, then the conversation's earlier turns, then the query (as Dify orders
    them), with vision images attached to the last user message."""
    messages = list(prompt.messages)
    if prompt.memory_limit and prompt.conversation_id and ctx.ports.memory is not None:
        messages.extend(await ctx.ports.memory.history(prompt.conversation_id, prompt.memory_limit))
    if prompt.query is not None and prompt.memory_limit:
        messages.append(ChatMessage("user", prompt.query))
    if prompt.files:
        parts = await file_parts(prompt.files, ctx)
        for i in range(len(messages) - 1, -1, -1):
            if messages[i].role == "user":
                text = messages[i].content
                head = [{"type": "text", "text": text}] if isinstance(text, str) else list(text)
                messages[i] = ChatMessage("user", head + parts)
                break
        else:
            messages.append(ChatMessage("user", parts))
    return messages


def request(data: Mapping[str, Any], messages: list[ChatMessage], **extra: Any) -> ChatRequest:
    provider, model, _mode, params = model_config(data)
    return ChatRequest(provider, model, tuple(messages), params, **extra)


def prompt_log(messages: list[ChatMessage]) -> list[dict[str, Any]]:
    return [
        {"role": m.role, "text": m.content if isinstance(m.content, str) else "", "files": []}
        for m in messages
    ]


class ThinkSplitter:
    """Splits streamed text into answer and ``<think>`` reasoning, across chunk boundaries."""

    def __init__(self) -> None:
        self._buffer = ""
        self._thinking = False

    def feed(self, text: str) -> list[tuple[str, str]]:
        self._buffer += text
        out: list[tuple[str, str]] = []
        while self._buffer:
            tag = THINK_CLOSE if self._thinking else THINK_OPEN
            kind = "reasoning" if self._thinking else "text"
            at = self._buffer.find(tag)
            if at >= 0:
                if at:
                    out.append((kind, self._buffer[:at]))
                self._buffer = self._buffer[at + len(tag) :]
                self._thinking = not self._thinking
                continue
            keep = _partial_tag(self._buffer, tag)
            ready = self._buffer[: len(self._buffer) - keep]
            if ready:
                out.append((kind, ready))
            self._buffer = self._buffer[len(self._buffer) - keep :]
            break
        return out

    def flush(self) -> list[tuple[str, str]]:
        rest, self._buffer = self._buffer, ""
        return [("reasoning" if self._thinking else "text", rest)] if rest else []


def _partial_tag(text: str, tag: str) -> int:
    """How many trailing characters of ``text`` could start ``tag``."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:size]):
            return size
    return 0

"""The model-provider port (§1.4, §4.11): chat requests out, streamed deltas back.

The engine speaks only these types; the OpenAI-compatible HTTP adapter lives in
``sluice.adapters.llm``. A request names its provider by the last path segment of the DSL's
``model.provider`` (``langgenius/openai/openai`` → ``openai``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: str  # system | user | assistant | tool
    content: str | list[dict[str, Any]]
    """Text, or OpenAI content parts (``{"type": "text"|"image_url", ...}``) for vision."""


@dataclass(frozen=True, slots=True)
class ChatRequest:
    provider: str
    model: str
    messages: tuple[ChatMessage, ...]
    params: Mapping[str, Any] = field(default_factory=dict)
    """OpenAI fields from ``completion_params`` (temperature, top_p, max_tokens, stop, ...)."""
    response_format: Mapping[str, Any] | None = None
    tools: tuple[Mapping[str, Any], ...] = ()
    tool_choice: Any = None


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0

    def to_dict(self, latency: float = 0.0) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "total_price": "0",
            "currency": "USD",
            "latency": round(latency, 3),
        }


@dataclass(frozen=True, slots=True)
class ChatDelta:
    text: str = ""
    reasoning: str = ""
    tool_calls: tuple[Mapping[str, Any], ...] = ()
    """OpenAI ``delta.tool_calls`` fragments, as received (index, id, function name/arguments)."""
    usage: Usage | None = None
    finish_reason: str | None = None


class ModelInvokeError(Exception):
    """The provider failed or answered something unusable; the message says which and why."""

    def __init__(self, message: str, error_type: str = "ModelInvokeError") -> None:
        super().__init__(message)
        self.message = message
        self.error_type = error_type


class ProviderNotConfigured(ModelInvokeError):
    def __init__(self, provider: str) -> None:
        super().__init__(f"Model provider '{provider}' is not configured", "ProviderNotConfiguredError")


class ModelProvider(Protocol):
    def stream(self, request: ChatRequest) -> AsyncIterator[ChatDelta]:
        """Deltas in arrival order; raises ``ModelInvokeError`` (also mid-stream)."""
        ...


def provider_name(raw: str) -> str:
    """``langgenius/openai/openai`` → ``openai``."""
    return raw.rstrip("/").rsplit("/", 1)[-1]

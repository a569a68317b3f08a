"""The ``ModelProvider`` port for the runtime: finds the named provider, then streams from it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import httpx

from sluice.adapters.llm.openai_compat import OpenAICompatibleProvider, ProviderConfig
from sluice.engine.llm import ChatDelta, ChatRequest, ProviderNotConfigured

Lookup = Callable[[str], Awaitable[ProviderConfig | None]]


class ProviderRegistry:
    def __init__(self, lookup: Lookup, client: httpx.AsyncClient | None = None) -> None:
        self._lookup = lookup
        self._client = client or httpx.AsyncClient()

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatDelta]:
        config = await self._lookup(request.provider)
        if config is None:
            raise ProviderNotConfigured(request.provider)
        async for delta in OpenAICompatibleProvider(config, self._client).stream(request):
            yield delta

    async def aclose(self) -> None:
        await self._client.aclose()

"""The OpenAI-compatible adapter against a real local HTTP server with scripted replies."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from sluice.adapters.llm.openai_compat import OpenAICompatibleProvider, ProviderConfig
from sluice.engine.llm import ChatDelta, ChatMessage, ChatRequest, ModelInvokeError
from tests.support.fake_openai import FakeOpenAI, Reply

REQUEST = ChatRequest("openai", "gpt-test", (ChatMessage("user", "hi"),), {"temperature": 0.2})


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


async def collect(fake: FakeOpenAI, **config: float) -> list[ChatDelta]:
    async with httpx.AsyncClient() as client:
        provider = OpenAICompatibleProvider(
            ProviderConfig("openai", fake.base_url, fake.api_key, backoff_s=0.01, **config), client
        )
        return [delta async for delta in provider.stream(REQUEST)]


async def test_streams_deltas_in_order_with_usage(fake: FakeOpenAI) -> None:
    fake.script(Reply(chunks=["Hel", "lo", " world"], reasoning=["thinking"], usage=(7, 3)))
    deltas = await collect(fake)
    assert "".join(d.text for d in deltas) == "Hello world"
    assert [d.text for d in deltas if d.text] == ["Hel", "lo", " world"]
    assert "".join(d.reasoning for d in deltas) == "thinking"
    usage = [d.usage for d in deltas if d.usage][-1]
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (7, 3, 10)
    sent = fake.requests[-1]
    assert sent["model"] == "gpt-test" and sent["stream"] is True and sent["temperature"] == 0.2
    assert sent["messages"] == [{"role": "user", "content": "hi"}]


async def test_retries_429_then_succeeds(fake: FakeOpenAI) -> None:
    before = len(fake.requests)
    fake.script(Reply(status=429, retry_after="0"), Reply(status=503), Reply(chunks=["ok"]))
    deltas = await collect(fake)
    assert "".join(d.text for d in deltas) == "ok"
    assert len(fake.requests) - before == 3


async def test_gives_up_after_max_retries(fake: FakeOpenAI) -> None:
    fake.script(*(Reply(status=429) for _ in range(3)))
    with pytest.raises(ModelInvokeError, match=r"\[openai\] Error 429: scripted 429"):
        await collect(fake, max_retries=2)


async def test_client_error_is_not_retried(fake: FakeOpenAI) -> None:
    before = len(fake.requests)
    fake.script(Reply(status=400))
    with pytest.raises(ModelInvokeError, match="Error 400"):
        await collect(fake)
    assert len(fake.requests) - before == 1


async def test_timeout_is_a_clear_error(fake: FakeOpenAI) -> None:
    fake.script(Reply(first_delay_s=2.0))
    with pytest.raises(ModelInvokeError, match=r"timed out after 0\.3s"):
        await collect(fake, timeout_s=0.3)


async def test_malformed_chunk_is_a_clear_error(fake: FakeOpenAI) -> None:
    fake.script(Reply(chunks=["a", "b", "c"], malformed_after=1))
    with pytest.raises(ModelInvokeError, match="Malformed chunk from the model provider"):
        await collect(fake)


async def test_wrong_key(fake: FakeOpenAI) -> None:
    async with httpx.AsyncClient() as client:
        provider = OpenAICompatibleProvider(ProviderConfig("openai", fake.base_url, "sk-wrong"), client)
        with pytest.raises(ModelInvokeError, match="Incorrect API key"):
            [d async for d in provider.stream(REQUEST)]


async def test_non_streaming_answer_is_accepted(fake: FakeOpenAI) -> None:
    fake.script(Reply(chunks=["whole"], stream=False))
    deltas = await collect(fake)
    assert [d.text for d in deltas] == ["whole"] and deltas[0].usage is not None

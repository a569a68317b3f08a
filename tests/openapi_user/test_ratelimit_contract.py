"""One contract for the ``RateLimiter`` port, run against the in-process and the Redis limiter."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from sluice.adapters.memory.ratelimit import MemoryRateLimiter
from sluice.adapters.redis.ratelimit import RedisRateLimiter
from sluice.services.ratelimit import RateLimited, RateLimiter, enforce
from tests.support.services import unique_name

T0 = 1_800_000_000.0


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.services)])
async def limiter(request: pytest.FixtureRequest) -> AsyncIterator[RateLimiter]:
    if request.param == "memory":
        yield MemoryRateLimiter()
        return
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(request.getfixturevalue("redis_server_url"))
    try:
        yield RedisRateLimiter(client, unique_name("rl"))
    finally:
        await client.aclose()


async def test_sliding_window_and_retry_after(limiter: RateLimiter) -> None:
    for i in range(3):
        assert (await limiter.hit("w", "k", 3, 60, T0 + i)).allowed
    denied = await limiter.hit("w", "k", 3, 60, T0 + 10)
    assert not denied.allowed and denied.retry_after == 50  # the hit at T0 leaves at T0 + 60
    assert not (await limiter.hit("w", "k", 3, 60, T0 + 59.5)).allowed  # rejected hits are not counted
    assert (await limiter.hit("w", "k", 3, 60, T0 + 60.5)).allowed  # T0's hit has left
    assert not (await limiter.hit("w", "k", 3, 60, T0 + 60.6)).allowed
    assert (await limiter.hit("w", "other", 3, 60, T0 + 10)).allowed
    assert (await limiter.hit("other-window", "k", 3, 60, T0 + 10)).allowed


async def test_retry_after_is_at_least_one(limiter: RateLimiter) -> None:
    assert (await limiter.hit("one", "k", 1, 10, T0)).allowed
    denied = await limiter.hit("one", "k", 1, 10, T0 + 9.99)
    assert not denied.allowed and denied.retry_after == 1
    with pytest.raises(RateLimited) as caught:
        await enforce(limiter, "one", "k", 1, 10, T0 + 9.999)
    assert caught.value.headers == {"Retry-After": "1"} and caught.value.status == 429
    await enforce(limiter, "one", "k", 0, 10, T0)  # 0 disables


async def test_peek_counts_nothing(limiter: RateLimiter) -> None:
    for _ in range(5):
        assert (await limiter.peek("p", "k", 2, 60, T0)).allowed
    await limiter.hit("p", "k", 2, 60, T0)
    await limiter.hit("p", "k", 2, 60, T0 + 1)
    peeked = await limiter.peek("p", "k", 2, 60, T0 + 2)
    assert not peeked.allowed and peeked.retry_after == 58
    assert (await limiter.peek("p", "k", 2, 60, T0 + 60.5)).allowed


async def test_swap_returns_the_previous_stamp(limiter: RateLimiter) -> None:
    assert await limiter.swap("device_poll", "h", T0, 900) is None
    assert await limiter.swap("device_poll", "h", T0 + 2, 900) == pytest.approx(T0)
    assert await limiter.swap("device_poll", "h", T0 + 9, 900) == pytest.approx(T0 + 2)
    assert await limiter.swap("device_poll", "other", T0, 900) is None

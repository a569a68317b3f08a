"""Sliding windows in Redis sorted sets (``<prefix>:rl:<name>:<key>``), shared by every replica;
stamps (``swap``) under ``<prefix>:<name>:<key>``.

One Lua script per hit: drop entries older than the window, count, add when under the limit, and
otherwise return the oldest score so the caller can compute ``Retry-After``. Rejected hits are not
counted. ``swap`` is ``SET … GET EX`` (Redis ≥ 6.2).
"""

from __future__ import annotations

import math
import secrets
from typing import Any

from sluice.services.ratelimit import Decision, retry_after

_HIT = """
local key = KEYS[1]
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local count = redis.call('ZCARD', key)
if count < limit then
  redis.call('ZADD', key, now, ARGV[4])
  redis.call('PEXPIRE', key, math.ceil(window * 1000))
  return {1, ''}
end
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
return {0, oldest[2]}
"""


_PEEK = """
local key = KEYS[1]
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
if redis.call('ZCARD', key) < tonumber(ARGV[3]) then
  return {1, ''}
end
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
return {0, oldest[2]}
"""


class RedisRateLimiter:
    def __init__(self, client: Any, prefix: str) -> None:
        self._redis = client
        self._prefix = prefix
        self._hit = client.register_script(_HIT)
        self._peek = client.register_script(_PEEK)

    def _key(self, name: str, key: str) -> str:
        return f"{self._prefix}:rl:{name}:{key}"

    async def hit(self, name: str, key: str, limit: int, window: float, now: float) -> Decision:
        member = f"{now:.6f}:{secrets.token_hex(4)}"
        allowed, oldest = await self._hit(
            keys=[self._key(name, key)], args=[repr(now), repr(window), limit, member]
        )
        if int(allowed) == 1:
            return Decision(True)
        return Decision(False, retry_after(float(oldest), window, now))

    async def peek(self, name: str, key: str, limit: int, window: float, now: float) -> Decision:
        allowed, oldest = await self._peek(keys=[self._key(name, key)], args=[repr(now), repr(window), limit])
        if int(allowed) == 1:
            return Decision(True)
        return Decision(False, retry_after(float(oldest), window, now))

    async def swap(self, name: str, key: str, value: float, ttl: float) -> float | None:
        previous = await self._redis.set(
            f"{self._prefix}:{name}:{key}", repr(value), ex=max(1, math.ceil(ttl)), get=True
        )
        return float(previous) if previous is not None else None

    async def close(self) -> None:
        return None

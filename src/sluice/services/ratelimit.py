"""Sliding-window rate limits (openapi-user.md §5) behind a small port.

``RateLimiter.hit`` counts one hit in a window and says whether it is allowed and, if not, how many
whole seconds until the oldest counted hit leaves the window; ``peek`` asks without counting.
``swap`` records a time under a key and returns the previous one (the device-poll ``slow_down``
check). Times are passed in (epoch seconds)
so an injected clock drives both implementations: in-process (embedded) and Redis sorted sets
(distributed, shared by every replica).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from sluice.services.errors import DomainError

RATE_LIMITED = "rate_limited"


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    retry_after: int = 0


class RateLimiter(Protocol):
    async def hit(self, name: str, key: str, limit: int, window: float, now: float) -> Decision: ...

    async def peek(self, name: str, key: str, limit: int, window: float, now: float) -> Decision:
        """Would a hit be allowed? Counts nothing (failed-login checks count failures only)."""
        ...

    async def swap(self, name: str, key: str, value: float, ttl: float) -> float | None: ...

    async def close(self) -> None: ...


class RateLimited(DomainError):
    """429 ``too_many_requests`` ``rate_limited`` with ``Retry-After`` (difyctl retries on it)."""

    status = 429
    code = "too_many_requests"
    message = RATE_LIMITED

    def __init__(self, retry_after: int) -> None:
        super().__init__(headers={"Retry-After": str(max(1, retry_after))})
        self.retry_after = max(1, retry_after)


def retry_after(oldest: float, window: float, now: float) -> int:
    """Whole seconds (≥ 1) until a hit at ``oldest`` leaves the window."""
    return max(1, math.ceil(oldest + window - now))


async def enforce(limiter: RateLimiter, name: str, key: str, limit: int, window: float, now: float) -> None:
    """Count a hit; raise ``RateLimited`` when over the limit (a limit of 0 disables the check)."""
    if limit <= 0:
        return
    decision = await limiter.hit(name, key, limit, window, now)
    if not decision.allowed:
        raise RateLimited(decision.retry_after)

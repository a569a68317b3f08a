"""The user API's services, opened next to the container (accounts, tokens, device flow, apps).

The rate limiter follows the mode: in-process in embedded mode, Redis (shared by every replica) in
distributed mode. The lead may fold this choice into ``bootstrap.py``; it is the only mode branch
here. A periodic task purges expired device codes, console sessions and old revoked tokens.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from sluice.adapters.memory.ratelimit import MemoryRateLimiter
from sluice.runtime.clock import SystemClock
from sluice.runtime.graphs import GraphCache
from sluice.services.accounts import AccountService, WallClock
from sluice.services.apps import AppService
from sluice.services.console import ConsoleService
from sluice.services.device_flow import DeviceFlowService
from sluice.services.oauth import TokenService
from sluice.services.ratelimit import RateLimiter
from sluice.services.user_apps import UserAppService
from sluice.settings import Mode, Settings

log = logging.getLogger("sluice")


@dataclass
class UserApi:
    settings: Settings
    clock: WallClock
    limiter: RateLimiter
    accounts: AccountService
    tokens: TokenService
    devices: DeviceFlowService
    apps: UserAppService
    console: ConsoleService
    _redis: Any = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    def build(
        cls,
        settings: Settings,
        db: async_sessionmaker[AsyncSession],
        graphs: GraphCache,
        *,
        clock: WallClock | None = None,
        limiter: RateLimiter | None = None,
        redis: Any = None,
    ) -> UserApi:
        wall = clock or SystemClock()
        if limiter is None:
            limiter = MemoryRateLimiter()
            if settings.mode is Mode.distributed and settings.redis_url:
                import redis.asyncio as aioredis

                from sluice.adapters.redis.ratelimit import RedisRateLimiter

                redis = aioredis.Redis.from_url(settings.redis_url)
                limiter = RedisRateLimiter(redis, settings.streaming.redis_key_prefix)
        s = settings.openapi
        return cls(
            settings,
            wall,
            limiter,
            AccountService(db, wall, limiter, s),
            TokenService(db, wall, limiter, s),
            DeviceFlowService(db, wall, limiter, s),
            UserAppService(db, graphs, settings.api),
            ConsoleService(db, AppService(db)),
            redis,
        )

    def start_housekeeping(self) -> None:
        self._tasks.append(asyncio.create_task(self._housekeeping()))

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(self.settings.openapi.cleanup_interval_seconds)
            try:
                await self.purge()
            except Exception:
                log.exception("user API housekeeping failed")

    async def purge(self) -> None:
        await self.devices.purge()
        await self.tokens.purge()
        await self.accounts.purge()

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.limiter.close()
        if self._redis is not None:
            with contextlib.suppress(Exception):
                await self._redis.aclose()

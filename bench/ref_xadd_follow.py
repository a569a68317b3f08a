"""Reference B (streaming spec §10): one awaited ``XADD`` per ~200-byte event plus a
blocking-``XREAD`` follower on its own connection; events/s until the follower has them all.
``python bench/ref_xadd_follow.py [events]``; ``measure`` is called by ``bench/stream_load.py``."""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid

import redis.asyncio as aioredis

PAYLOAD = b'{"event":"text_chunk","data":{"text":"' + b"x" * 160 + b'"}}'


async def run(url: str, events: int) -> float:
    key = f"bench:ref:{uuid.uuid4().hex}"
    writer = aioredis.Redis.from_url(url)
    follower = aioredis.Redis.from_url(url, single_connection_client=True)
    try:

        async def follow() -> int:
            last, seen = "0-0", 0
            while seen < events:
                reply = await follower.xread({key: last}, count=1000, block=1000)
                for _, entries in reply:
                    seen += len(entries)
                    last = entries[-1][0].decode()
            return seen

        task = asyncio.create_task(follow())
        await asyncio.sleep(0.05)
        started = time.perf_counter()
        for _ in range(events):
            await writer.xadd(key, {"e": b"text_chunk", "d": PAYLOAD})
        await task
        return events / (time.perf_counter() - started)
    finally:
        await writer.delete(key)
        await writer.aclose()
        await follower.aclose()


def measure(url: str, events: int = 20_000) -> float:
    return asyncio.run(run(url, events))


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    print(f"bare XADD/XREAD: {measure(url, n):,.0f} events/s")

"""Must-show 1 (streaming spec §11 scenario 5, CI size): a proxy cuts every SSE connection at a
random point; clients resume with ``Last-Event-ID``; over at least 200 cuts across concurrent runs
every client's sequence equals the stored one exactly (0 lost, 0 duplicated, one terminal).
``bench/torture.py`` runs the full size."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import httpx
import pytest

from tests.streaming.support import (
    App,
    Resumed,
    SSEParser,
    chain_dsl,
    data_frames,
    events_url,
    follow_through_cuts,
    import_app,
)
from tests.support.chaos_proxy import ChaosProxy
from tests.support.servers import LiveServer

MIN_CUTS = 200


async def stored(client: httpx.AsyncClient, app: App, task_id: str) -> list[bytes]:
    parser = SSEParser()
    params = {"user": "u1", "cursor": "0-0"}
    async with client.stream("GET", events_url(task_id), params=params, headers=app.headers) as resp:
        async for chunk in resp.aiter_raw():
            parser.feed(chunk)
    return [f.raw for f in data_frames(parser.frames)]


async def test_every_cut_is_resumed_without_loss_or_duplicate(
    server: LiveServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    dsl = chain_dsl(80, slow={20: 0.5, 40: 0.5, 60: 0.5})  # ~170 events over ~2 s per run
    app = import_app(server, tmp_path_factory.mktemp("torture"), dsl, "torture")
    upstream = urlsplit(server.base_url)
    proxy = ChaosProxy(upstream.hostname or "127.0.0.1", upstream.port or 80, cut_after=(0.02, 0.5), seed=5)
    await proxy.start()
    results: list[Resumed] = []
    timeout = httpx.Timeout(60)
    async with (
        httpx.AsyncClient(base_url=server.base_url, timeout=timeout) as direct,
        httpx.AsyncClient(base_url=proxy.url, timeout=timeout) as proxied,
    ):
        for wave in range(10):  # waves of 6 concurrent runs until the proxy has cut enough
            batch = [follow_through_cuts(direct, proxied, app, {"query": f"w{wave}r{i}"}) for i in range(6)]
            results += await asyncio.gather(*batch)
            if proxy.cuts >= MIN_CUTS:
                break
        for result in results:
            expected = await stored(direct, app, result.task_id)
            got = [f.raw for f in result.frames]
            assert got == expected, (
                f"run {result.task_id}: {len(got)} frames received, {len(expected)} stored"
            )
            assert sum(f.data["event"] == "workflow_finished" for f in result.frames) == 1
            assert len(expected) >= 160  # 82 node pairs plus the run's own events
    await proxy.close()
    assert proxy.cuts >= MIN_CUTS, f"only {proxy.cuts} cuts"
    print(
        f"torture: {len(results)} runs, {proxy.cuts} cuts, {sum(r.connections for r in results)} reconnects"
    )

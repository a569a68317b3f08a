"""Token streaming overhead: provider's chunk sent → client's ``text_chunk`` received, through a
live embedded ``sluice serve`` (SQL, engine, event log, SSE), against the provider's own stream
read directly by an httpx client in the same run (the reference).

Run: ``uv run python bench/llm_stream.py [--runs 20] [--chunks 50] [--interval-ms 10]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.fake_openai import FakeOpenAI, Reply  # noqa: E402
from tests.support.servers import launch  # noqa: E402

DSL = ROOT / "bench" / "dsl" / "llm_stream.yml"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000, 3)


def direct(fake: FakeOpenAI, chunks: int, interval: float) -> tuple[list[float], list[float]]:
    """The provider's own stream: per-chunk latency and first-token latency, read with httpx."""
    fake.script(Reply(chunks=[f"t{i} " for i in range(chunks)], delay_s=interval))
    start = len(fake.chunk_sent_at)
    received: list[float] = []
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": True}
    headers = {"Authorization": f"Bearer {fake.api_key}"}
    with httpx.stream("POST", fake.base_url + "/chat/completions", json=body, headers=headers) as resp:
        for line in resp.iter_lines():
            if line.startswith("data: ") and '"content": "t' in line:
                received.append(time.perf_counter())
    sent = fake.chunk_sent_at[start:]
    lat = [r - s for r, s in zip(received, sent, strict=True)]
    return lat, lat[:1]


def through_sluice(
    base_url: str, key: str, fake: FakeOpenAI, chunks: int, interval: float
) -> tuple[list[float], list[float]]:
    fake.script(Reply(chunks=[f"t{i} " for i in range(chunks)], delay_s=interval))
    start = len(fake.chunk_sent_at)
    received: list[float] = []
    body = {"inputs": {"q": "go"}, "response_mode": "streaming", "user": "bench"}
    with httpx.stream(
        "POST",
        base_url + "/v1/workflows/run",
        json=body,
        headers={"Authorization": f"Bearer {key}"},
        timeout=60,
    ) as resp:
        for line in resp.iter_lines():
            if line.startswith("data: ") and '"event":"text_chunk"' in line and '"text":"t' in line:
                received.append(time.perf_counter())
    sent = fake.chunk_sent_at[start:]
    lat = [r - s for r, s in zip(received, sent, strict=True)]
    return lat, lat[:1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--chunks", type=int, default=50)
    parser.add_argument("--interval-ms", type=float, default=10)
    args = parser.parse_args()
    interval = args.interval_ms / 1000
    with FakeOpenAI() as fake, tempfile.TemporaryDirectory() as tmp:
        server = launch("embedded", Path(tmp), None, None, "bench")
        try:
            server.cli("providers", "add", "openai", "--base-url", fake.base_url, "--api-key", fake.api_key)
            key = server.create_key(server.import_app(DSL))
            through_sluice(server.base_url, key, fake, 5, interval)  # warm up
            ref_all: list[float] = []
            ref_first: list[float] = []
            all_: list[float] = []
            first: list[float] = []
            for _ in range(args.runs):
                a, f = direct(fake, args.chunks, interval)
                ref_all += a
                ref_first += f
                a, f = through_sluice(server.base_url, key, fake, args.chunks, interval)
                all_ += a
                first += f
        finally:
            server.stop_all()
    result = {
        "chunks_per_run": args.chunks,
        "runs": args.runs,
        "provider_direct": {
            "chunk_p50_ms": pct(ref_all, 0.5),
            "chunk_p99_ms": pct(ref_all, 0.99),
            "first_token_p50_ms": pct(ref_first, 0.5),
        },
        "through_sluice": {
            "chunk_p50_ms": pct(all_, 0.5),
            "chunk_p99_ms": pct(all_, 0.99),
            "first_token_p50_ms": pct(first, 0.5),
            "first_token_p99_ms": pct(first, 0.99),
        },
        "added_per_chunk_p50_ms": round(pct(all_, 0.5) - pct(ref_all, 0.5), 3),
        "added_per_chunk_p99_ms": round(pct(all_, 0.99) - pct(ref_all, 0.99), 3),
        "target_added_p99_ms": 5,
        "python": platform.python_version(),
    }
    print(json.dumps(result, indent=2))
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / f"llm_stream-{time.strftime('%Y-%m-%d')}.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

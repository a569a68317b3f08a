"""Helpers of the end-to-end human-input tests against real ``sluice serve``/``sluice worker``."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from tests.human_input.harness import FIXTURES
from tests.support.servers import LiveServer
from tests.support.sse import parse_sse

ANSWER = {"comment": "fine", "verdict": "good"}


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def review_app(server: LiveServer) -> str:
    """Import the review fixture; returns a Service API key."""
    return server.create_key(server.import_app(FIXTURES / "review.yml"))


def stream_run(client: httpx.Client, key: str, user: str = "u1") -> list[dict[str, Any]]:
    body = {"inputs": {"author": "Ann", "note": "looks ok"}, "response_mode": "streaming", "user": user}
    with client.stream("POST", "/v1/workflows/run", json=body, headers=auth(key)) as resp:
        assert resp.status_code == 200, resp.read()
        text = "".join(resp.iter_text())
    return [f.data for f in parse_sse(text) if isinstance(f.data, dict)]


def reconnect(client: httpx.Client, key: str, run_id: str, user: str = "u1") -> list[dict[str, Any]]:
    """A continue-on-pause reconnect read to ``workflow_finished``."""
    params = {"user": user, "continue_on_pause": "true"}
    with client.stream("GET", f"/v1/workflow/{run_id}/events", params=params, headers=auth(key)) as resp:
        assert resp.status_code == 200, resp.read()
        text = ""
        for chunk in resp.iter_text():
            text += chunk
            if '"event":"workflow_finished"' in text and text.endswith("\n\n"):
                break
    return [f.data for f in parse_sse(text) if isinstance(f.data, dict)]


def wait_status(
    client: httpx.Client, key: str, run_id: str, *statuses: str, timeout: float = 60
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body = client.get(f"/v1/workflows/run/{run_id}", headers=auth(key)).json()
        if body.get("status") in statuses or time.monotonic() > deadline:
            return dict(body)
        time.sleep(0.1)


def names(events: list[dict[str, Any]]) -> list[str]:
    return [str(e.get("event")) for e in events]


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)

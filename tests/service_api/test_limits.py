"""Concurrency limit and stop of a live run (service-api §8, §5.3, §11 18 and 27): the server of
this suite allows one live run per app (``SLUICE_API__APP_MAX_ACTIVE_REQUESTS=1``)."""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx
import pytest
from tests.service_api.conftest import FIXTURES, SHARED_FIXTURES, Keys, app_key, assert_error, auth
from tests.support.servers import LiveServer


@pytest.fixture(scope="module")
def slow_app(svc: LiveServer) -> Keys:
    return app_key(svc, FIXTURES / "slow.yml")


@pytest.fixture(scope="module")
def other(svc: LiveServer) -> Keys:
    return app_key(svc, SHARED_FIXTURES / "app_a.yml")


class StreamReader(threading.Thread):
    """Reads one streaming run's events in the background."""

    def __init__(self, base_url: str, key: str, body: dict[str, Any]) -> None:
        super().__init__(daemon=True)
        self.base_url, self.key, self.body = base_url, key, body
        self.events: list[dict[str, Any]] = []
        self.started = threading.Event()

    def run(self) -> None:
        with (
            httpx.Client(base_url=self.base_url, timeout=120) as client,
            client.stream("POST", "/v1/workflows/run", json=self.body, headers=auth(self.key)) as resp,
        ):
            for line in resp.iter_lines():
                if line.startswith("data: "):
                    self.events.append(json.loads(line[6:]))
                    if any(
                        e["event"] == "node_started" and e["data"]["node_id"] == "nap" for e in self.events
                    ):
                        self.started.set()


def test_one_live_run_per_app_then_stop_scenarios_18_27(svc: LiveServer, slow_app: Keys, other: Keys) -> None:
    body = {"inputs": {"seconds": 280}, "response_mode": "streaming", "user": "u1"}
    reader = StreamReader(svc.base_url, slow_app.key, body)
    reader.start()
    assert reader.started.wait(60), reader.events
    task_id = reader.events[0]["task_id"]
    run_id = reader.events[0]["workflow_run_id"]
    with httpx.Client(base_url=svc.base_url, timeout=60) as client:
        second = client.post(
            "/v1/workflows/run", json={"inputs": {"seconds": 0}, "user": "u1"}, headers=auth(slow_app.key)
        )
        assert_error(second, 429, "too_many_requests")
        assert second.headers["retry-after"] == "5"
        assert f"allowed for {slow_app.app_id} is 1." in second.json()["message"]
        # another app is not limited by this one's live run
        ok = client.post(
            "/v1/workflows/run", json={"inputs": {"query": "hi"}, "user": "u1"}, headers=auth(other.key)
        )
        assert ok.status_code == 200 and ok.json()["data"]["status"] == "succeeded"
        # stop by another end user or another app's key: success, without effect
        for key, user in ((slow_app.key, "u2"), (other.key, "u1")):
            resp = client.post(f"/v1/workflows/tasks/{task_id}/stop", json={"user": user}, headers=auth(key))
            assert resp.status_code == 200 and resp.json() == {"result": "success"}
        detail = client.get(f"/v1/workflows/run/{run_id}", headers=auth(slow_app.key)).json()
        assert detail["status"] == "running"
        resp = client.post(
            f"/v1/workflows/tasks/{task_id}/stop", json={"user": "u1"}, headers=auth(slow_app.key)
        )
        assert resp.status_code == 200 and resp.json() == {"result": "success"}
        reader.join(60)
        assert not reader.is_alive()
        last = reader.events[-1]
        assert last["event"] == "workflow_finished" and last["data"]["status"] == "stopped"
        # the slot is free again
        again = client.post(
            "/v1/workflows/run", json={"inputs": {"seconds": 0}, "user": "u1"}, headers=auth(slow_app.key)
        )
        assert again.status_code == 200 and again.json()["data"]["status"] == "succeeded"

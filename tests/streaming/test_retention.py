"""Expired logs (streaming spec §3.4, §11 scenario 8): with a 2 s retention, 3 s after the end an
old offset gets a flagged snapshot from SQL, in embedded and distributed mode."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.streaming.support import App, chain_dsl, data_frames, import_app, read_events, start_stream
from tests.support.servers import LiveServer

SERVER_ENV = {
    "SLUICE_STREAMING__PUBSUB_STREAMS_RETENTION_SECONDS": "2",
    "SLUICE_STREAMING__ALLOW_SHORT_RETENTION": "true",
}


@pytest.fixture(scope="module")
def app(server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> App:
    return import_app(server, tmp_path_factory.mktemp("retention"), chain_dsl(3), "retention")


def test_expired_log_gives_a_flagged_snapshot(server: LiveServer, app: App) -> None:
    with httpx.Client(base_url=server.base_url, timeout=60) as client:
        run_id, task_id, frames = start_stream(client, app, {"query": "old"})
        live = data_frames(frames)
        old = live[2].id
        time.sleep(3.5)
        resp, snapshot = read_events(client, app, task_id, {"cursor": old})
        assert resp.status_code == 200
        events = data_frames(snapshot)
        assert all(f.data["snapshot"] is True for f in events)
        names = [f.data["event"] for f in events]
        assert names == ["workflow_started", *["node_started", "node_finished"] * 5, "workflow_finished"]
        assert all(f.id is None for f in events[:-1]) and events[-1].id == live[-1].id
        for frame in events:
            if frame.data["event"] == "node_finished":
                data = frame.data["data"]
                assert data["outputs"] is None and data["outputs_truncated"] is True
                assert data["status"] == "succeeded"
        assert events[-1].data["data"] == live[-1].data["data"]
        assert {f.data["data"]["id"] for f in events[1:-1]} == {
            f.data["data"]["id"] for f in live if f.data["event"] == "node_started"
        }
        resp, only = read_events(client, app, task_id)  # no offset: the stored terminal, flagged
        assert [(f.data["event"], f.data.get("snapshot"), f.id) for f in data_frames(only)] == [
            ("workflow_finished", True, None)
        ]
        detail = client.get(f"/v1/workflows/run/{run_id}", headers=app.headers).json()
        assert detail["status"] == "succeeded"

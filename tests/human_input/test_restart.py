"""Resume survives restarts (issue must-show 5, scenario 21): pause, restart the API (and the worker),
submit, the run finishes; nothing before the pause runs twice."""

from __future__ import annotations

import httpx

from tests.human_input.conftest import start_processes
from tests.human_input.live import ANSWER, auth, review_app, stream_run, wait_status
from tests.support.servers import LiveServer


def test_submit_after_restart_resumes_and_finishes(hitl_server: LiveServer) -> None:
    key = review_app(hitl_server)
    with httpx.Client(base_url=hitl_server.base_url, timeout=60) as client:
        events = stream_run(client, key)
        token, run_id = events[-2]["data"]["form_token"], events[-1]["workflow_run_id"]
    hitl_server.stop_all()
    start_processes(hitl_server)
    with httpx.Client(base_url=hitl_server.base_url, timeout=60) as client:
        assert wait_status(client, key, run_id, "paused")["status"] == "paused"
        ok = client.post(
            f"/v1/form/human_input/{token}",
            json={"action": "approve", "inputs": ANSWER, "user": "u1"},
            headers=auth(key),
        )
        assert ok.status_code == 200, ok.text
        finished = wait_status(client, key, run_id, "succeeded", "failed", "stopped")
        assert finished["status"] == "succeeded", finished
        assert finished["outputs"] == {"result": "approve: fine"}
        # start, review (asked, then re-run with its execution id after the resume), t1, end:
        # nothing before the pause ran again (a re-run start would make it 6)
        assert finished["total_steps"] == 5, finished

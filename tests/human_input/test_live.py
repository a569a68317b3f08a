"""End to end through real processes, in both modes (human-input.md §12 scenarios 3, 5, 8, 9, 10,
13, 14, 21): the Service API stream pauses on the form, the form routes answer it, the run resumes
once and finishes on the chosen branch."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.human_input.live import ANSWER, auth, names, reconnect, review_app, stream_run, wait_status
from tests.support.servers import LiveServer


@pytest.fixture
def client(live_server: LiveServer) -> httpx.Client:
    with httpx.Client(base_url=live_server.base_url, timeout=60) as c:
        yield c  # type: ignore[misc]


def test_stream_pauses_then_a_service_api_submit_finishes_the_run(
    client: httpx.Client, live_server: LiveServer
) -> None:
    key = review_app(live_server)
    events = stream_run(client, key)
    assert names(events)[-3:] == ["node_started", "human_input_required", "workflow_paused"]
    required = events[-2]["data"]
    token = required["form_token"]
    assert re.fullmatch(r"[A-Za-z0-9]{22}", token) and required["approval_channels"] == ["console"]
    run_id = events[-1]["workflow_run_id"]
    assert wait_status(client, key, run_id, "paused")["status"] == "paused"

    shown = client.get(f"/v1/form/human_input/{token}", headers=auth(key))
    assert shown.status_code == 200, shown.text
    assert shown.json()["resolved_default_values"] == {"comment": "looks ok", "verdict": ""}
    assert set(shown.json()) == {
        "form_content",
        "inputs",
        "resolved_default_values",
        "user_actions",
        "expiration_time",
    }

    no_user = client.post(
        f"/v1/form/human_input/{token}", json={"action": "approve", "inputs": ANSWER}, headers=auth(key)
    )
    assert no_user.status_code == 400
    assert no_user.json() == {"code": "invalid_param", "message": "Arg user must be provided.", "status": 400}

    bad = client.post(
        f"/v1/form/human_input/{token}",
        json={"action": "nope", "inputs": {}, "user": "u1"},
        headers=auth(key),
    )
    assert bad.status_code == 400 and set(bad.json()) == {"code", "message", "status"}
    assert bad.json()["code"] == "invalid_form_data" and bad.json()["message"] == "Invalid action: nope"

    ok = client.post(
        f"/v1/form/human_input/{token}",
        json={"action": "approve", "inputs": ANSWER, "user": "u1"},
        headers=auth(key),
    )
    assert ok.status_code == 200 and ok.json() == {}
    resumed = reconnect(client, key, run_id)
    tail = names(resumed)[names(resumed).index("workflow_paused") + 1 :]
    assert tail[:4] == ["workflow_started", "node_started", "human_input_form_filled", "node_finished"]
    assert resumed[names(resumed).index("workflow_paused") + 1]["data"]["reason"] == "resumption"
    assert resumed[-1]["event"] == "workflow_finished" and resumed[-1]["data"]["status"] == "succeeded"
    assert resumed[-1]["data"]["outputs"] == {"result": "approve: fine"}

    again = client.post(
        f"/v1/form/human_input/{token}",
        json={"action": "approve", "inputs": ANSWER, "user": "u1"},
        headers=auth(key),
    )
    assert again.status_code == 412
    assert again.json()["code"] == "human_input_form_submitted" and "form_id=" in again.json()["message"]
    gone = client.get(f"/v1/form/human_input/{token}", headers=auth(key))
    assert gone.status_code == 412


def test_token_scoping_across_surfaces_and_apps(client: httpx.Client, live_server: LiveServer) -> None:
    key = review_app(live_server)
    other = review_app(live_server)
    events = stream_run(client, key)
    token = events[-2]["data"]["form_token"]
    assert client.get(f"/v1/form/human_input/{token}", headers=auth(other)).status_code == 404
    unknown = client.get("/v1/form/human_input/AAAAAAAAAAAAAAAAAAAAAA", headers=auth(key))
    assert unknown.status_code == 404 and unknown.json()["message"] == "Form not found"
    public = client.get(f"/api/form/human_input/{token}")
    assert public.status_code == 200 and public.json()["site"]["site"]["title"] == "Review"
    assert client.get("/api/form/human_input/AAAAAAAAAAAAAAAAAAAAAA").status_code == 404
    bad = client.post(
        f"/api/form/human_input/{token}", json={"action": "approve", "inputs": {"verdict": "x"}}
    )
    assert bad.status_code == 400
    assert "Missing required inputs: comment" in [d["msg"] for d in bad.json()["details"]]


def test_twenty_concurrent_submissions_over_http(client: httpx.Client, live_server: LiveServer) -> None:
    key = review_app(live_server)
    events = stream_run(client, key)
    token, run_id = events[-2]["data"]["form_token"], events[-1]["workflow_run_id"]

    def post(i: int) -> int:
        with httpx.Client(base_url=live_server.base_url, timeout=60) as c:
            body = {"action": "approve" if i % 2 else "reject", "inputs": ANSWER, "user": "u1"}
            if i % 2:
                return c.post(f"/v1/form/human_input/{token}", json=body, headers=auth(key)).status_code
            return c.post(f"/api/form/human_input/{token}", json=body).status_code

    with ThreadPoolExecutor(20) as pool:
        codes = list(pool.map(post, range(20)))
    assert sorted(codes) == [200] + [412] * 19
    finished = wait_status(client, key, run_id, "succeeded", "failed", "stopped")
    assert finished["status"] == "succeeded"
    assert finished["outputs"] in ({"result": "approve: fine"}, {"rejected": "Reject"})
    resumed = reconnect(client, key, run_id)
    starts = [
        e for e in resumed if e["event"] == "workflow_started" and e["data"].get("reason") == "resumption"
    ]
    # a finished run may be served from the log or as a SQL snapshot: never two resumptions
    assert len(starts) <= 1 and names(resumed).count("workflow_finished") == 1

"""The form lifecycle at service level (human-input.md §12, scenarios 3, 5–9, 12, 20)."""

from __future__ import annotations

import re

import pytest

from sluice.services.forms import FormAlreadySubmitted, FormExpired, InvalidFormData, Submitter
from tests.human_input.harness import Harness, names

WEB = "service_api"


async def paused(hx: Harness) -> tuple[str, str]:
    auth = await hx.app()
    run_id = await hx.start(auth)
    await hx.wait_status(run_id, "paused")
    (form,) = await hx.forms_of(run_id)
    return run_id, form.id


async def test_pause_emits_the_form_and_pauses_the_run(hx: Harness) -> None:
    run_id, form_id = await paused(hx)
    events = await hx.events(run_id)
    assert names(events)[-3:] == ["node_started", "human_input_required", "workflow_paused"]
    assert events[-3]["data"]["node_id"] == "review"
    required = events[-2]["data"]
    kinds = sorted(r.recipient_type for r in await hx.recipients(form_id))
    assert kinds == ["backstage", "standalone_web_app"]
    assert required["form_token"] == await hx.token(form_id)
    assert re.fullmatch(r"[A-Za-z0-9]{22}", required["form_token"])
    assert required["approval_channels"] == ["console"]
    assert required["form_content"] == "Draft by Ann\n\nComment: {{#$output.comment#}}"
    assert required["resolved_default_values"] == {"comment": "looks ok", "verdict": ""}
    assert required["actions"][0] == {"id": "approve", "title": "Approve", "button_style": "primary"}
    paused_data = events[-1]["data"]
    assert paused_data["paused_nodes"] == ["review"] and paused_data["status"] == "paused"
    assert paused_data["reasons"][0]["TYPE"] == "human_input_required"
    assert paused_data["reasons"][0]["form_id"] == form_id
    body = await hx.forms.view(required["form_token"], WEB)
    assert body["resolved_default_values"]["comment"] == "looks ok"
    assert body["inputs"][1]["option_source"]["value"] == ["good", "bad"]


async def test_submit_approve_resumes_once_and_finishes_on_the_action_branch(hx: Harness) -> None:
    run_id, form_id = await paused(hx)
    token = await hx.token(form_id)
    await hx.forms.submit(token, "approve", {"comment": "fine", "verdict": "good"}, WEB, Submitter())
    run = await hx.wait_status(run_id, "succeeded")
    assert run.outputs == {"result": "approve: fine"}
    events = await hx.events(run_id)
    tail = names(events)[names(events).index("workflow_paused") + 1 :]
    assert tail[:4] == ["workflow_started", "node_started", "human_input_form_filled", "node_finished"]
    assert tail[-1] == "workflow_finished" and tail.count("workflow_finished") == 1
    resumed = events[names(events).index("workflow_paused") + 1]
    assert resumed["data"]["reason"] == "resumption"
    filled = next(e for e in events if e["event"] == "human_input_form_filled")["data"]
    assert filled == {
        "node_id": "review",
        "node_title": "Review draft",
        "rendered_content": "Draft by Ann\n\nComment: fine",
        "action_id": "approve",
        "action_text": "Approve",
        "submitted_data": {"comment": "fine", "verdict": "good"},
    }
    started = [
        e["data"]["id"] for e in events if e["event"] == "node_started" and e["data"]["node_id"] == "review"
    ]
    assert len(started) == 2 and started[0] == started[1]  # the same node execution re-runs
    finished = [e for e in events if e["event"] == "node_finished" and e["data"]["node_id"] == "review"]
    assert len(finished) == 1
    outputs = finished[0]["data"]["outputs"]
    assert outputs["__action_id"] == "approve" and outputs["__action_value"] == "Approve"
    assert outputs["__rendered_content"] == "Draft by Ann\n\nComment: fine"
    starts = [e["data"]["node_id"] for e in events if e["event"] == "node_started"]
    assert starts.count("start") == 1  # nothing before the pause ran twice
    with pytest.raises(FormAlreadySubmitted) as again:
        await hx.forms.submit(token, "approve", {"comment": "x", "verdict": "good"}, WEB, Submitter())
    assert again.value.status == 412 and form_id in again.value.message


async def test_reject_runs_only_its_branch(hx: Harness) -> None:
    run_id, form_id = await paused(hx)
    await hx.forms.submit(
        await hx.token(form_id), "reject", {"comment": "", "verdict": "bad"}, WEB, Submitter()
    )
    run = await hx.wait_status(run_id, "succeeded")
    assert run.outputs == {"rejected": "Reject"}
    started = {e["data"]["node_id"] for e in await hx.events(run_id) if e["event"] == "node_started"}
    assert "t1" not in started and "end" not in started and "end_b" in started


async def test_invalid_submissions_leave_the_form_waiting(hx: Harness) -> None:
    run_id, form_id = await paused(hx)
    token = await hx.token(form_id)
    with pytest.raises(InvalidFormData) as bad:
        await hx.forms.submit(token, "nope", {"verdict": "ugly"}, WEB, Submitter())
    msgs = [d["msg"] for d in bad.value.details]
    assert bad.value.message == "Invalid action: nope"
    assert "Missing required inputs: comment" in msgs
    assert any(m.startswith("Invalid value for select input 'verdict'") for m in msgs)
    with pytest.raises(InvalidFormData):
        await hx.forms.submit(token, "approve", {"comment": {"a": 1}, "verdict": "good"}, WEB, Submitter())
    (form,) = await hx.forms_of(run_id)
    assert form.status == "waiting"
    await hx.forms.submit(token, "approve", {"comment": "ok", "verdict": "good"}, WEB, Submitter())
    await hx.wait_status(run_id, "succeeded")


async def test_stop_while_paused_expires_the_form(hx: Harness) -> None:
    run_id, form_id = await paused(hx)
    assert hx.container.runs is not None
    await hx.container.runs.stop_run(run_id)
    run = await hx.wait_status(run_id, "stopped")
    assert run.error == "Stopped by user"
    (form,) = await hx.forms_of(run_id)
    assert (form.status, form.closed_reason) == ("expired", "run_stopped")
    events = await hx.events(run_id)
    assert events[-1]["event"] == "workflow_finished" and events[-1]["data"]["status"] == "stopped"
    with pytest.raises(FormExpired):
        await hx.forms.submit(
            await hx.token(form_id), "approve", {"comment": "", "verdict": "good"}, WEB, Submitter()
        )

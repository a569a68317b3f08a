"""Exactly-once submission and resume under a race, and the checker with an injected clock
(human-input.md §12 scenarios 10, 15–19)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlmodel import select

from sluice.adapters.sql.tables import WorkflowResumeRequest
from sluice.services.forms import FormAlreadySubmitted, FormExpired, Submitter
from sluice.services.forms_checker import FormChecker
from sluice.services.human_input import HumanInputConfig
from tests.human_input.harness import Harness, names
from tests.human_input.test_lifecycle import WEB, paused

ANSWER = {"comment": "fine", "verdict": "good"}


async def requests_of(hx: Harness, run_id: str) -> list[WorkflowResumeRequest]:
    async with hx.db() as session:
        stmt = select(WorkflowResumeRequest).where(WorkflowResumeRequest.workflow_run_id == run_id)
        return list((await session.exec(stmt)).all())


async def test_twenty_concurrent_submissions_one_wins_one_resume(hx: Harness) -> None:
    run_id, form_id = await paused(hx)
    web = await hx.token(form_id)
    backstage = await hx.token(form_id, "backstage")
    calls = [
        hx.forms.submit(
            web if i % 2 else backstage,
            "approve" if i % 3 else "reject",
            ANSWER,
            WEB if i % 2 else "console",
            Submitter(),
        )
        for i in range(20)
    ]
    results = await asyncio.gather(*calls, return_exceptions=True)
    won = [r for r in results if not isinstance(r, BaseException)]
    lost = [r for r in results if isinstance(r, BaseException)]
    assert len(won) == 1 and len(lost) == 19
    assert all(isinstance(r, FormAlreadySubmitted) and r.status == 412 for r in lost), lost
    run = await hx.wait_status(run_id, "succeeded")
    (form,) = await hx.forms_of(run_id)
    winner = won[0]
    assert form.completed_by_recipient_id is not None
    (request,) = await requests_of(hx, run_id)
    assert request.consumed_at is not None and request.cause == "submitted"
    events = await hx.events(run_id)
    resumptions = [
        e for e in events if e["event"] == "workflow_started" and e["data"]["reason"] == "resumption"
    ]
    assert len(resumptions) == 1
    assert names(events).count("workflow_finished") == 1
    expected = {"result": "approve: fine"} if form.selected_action_id == "approve" else {"rejected": "Reject"}
    assert run.outputs == expected and winner.id == form_id


async def test_node_timeout_resumes_on_the_timeout_edge(hx: Harness) -> None:
    run_id, form_id = await paused(hx)
    token = await hx.token(form_id)
    hx.clock.offset = timedelta(hours=1, seconds=1)
    await hx.checker.tick()
    run = await hx.wait_status(run_id, "succeeded")
    (form,) = await hx.forms_of(run_id)
    assert (form.status, form.closed_reason) == ("timeout", "node_timeout")
    assert run.outputs == {"timed_out": "Draft by Ann\n\nComment: {{#$output.comment#}}"}
    events = await hx.events(run_id)
    tail = [n for n in names(events)[names(events).index("workflow_paused") + 1 :] if n != "text_chunk"]
    assert tail[:4] == ["workflow_started", "node_started", "human_input_form_timeout", "node_finished"]
    timeout = next(e for e in events if e["event"] == "human_input_form_timeout")["data"]
    assert set(timeout) == {"node_id", "node_title", "expiration_time"}
    assert (
        timeout["expiration_time"] == int(form.expiration_time.timestamp()) or timeout["expiration_time"] > 0
    )
    review = [e for e in events if e["event"] == "node_finished" and e["data"]["node_id"] == "review"]
    assert review[0]["data"]["outputs"]["__action_id"] == ""
    assert "end_t" in {e["data"]["node_id"] for e in events if e["event"] == "node_started"}
    assert tail[-1] == "workflow_finished" and events[-1]["data"]["status"] == "succeeded"
    for call in (hx.forms.view(token, WEB), hx.forms.submit(token, "approve", ANSWER, WEB, Submitter())):
        with pytest.raises(FormExpired):
            await call
    await hx.checker.tick()  # a closed form is never touched again
    (again,) = await hx.forms_of(run_id)
    assert again.updated_at == form.updated_at and again.status == "timeout"


async def test_node_timeout_without_timeout_edge_ends_the_branch(hx: Harness) -> None:
    auth = await hx.app("review_no_timeout.yml")
    run_id = await hx.start(auth)
    await hx.wait_status(run_id, "paused")
    hx.clock.offset = timedelta(hours=2)
    await hx.checker.tick()
    run = await hx.wait_status(run_id, "succeeded")
    assert run.outputs == {}
    events = await hx.events(run_id)
    assert events[-1]["event"] == "workflow_finished" and events[-1]["data"]["status"] == "succeeded"
    started = {e["data"]["node_id"] for e in events if e["event"] == "node_started"}
    assert not started & {"t1", "end", "end_b"}


async def test_deadline_passed_before_the_tick_refuses_submissions(hx: Harness) -> None:
    run_id, form_id = await paused(hx)
    hx.clock.offset = timedelta(hours=1, seconds=1)
    with pytest.raises(FormExpired) as refused:
        await hx.forms.submit(await hx.token(form_id), "approve", ANSWER, WEB, Submitter())
    assert refused.value.message == f"This form has expired, form_id={form_id}"
    assert (await hx.run(run_id)).status == "paused"


async def test_global_expiry_stops_the_run_with_a_terminal_event(hx: Harness) -> None:
    run_id, form_id = await paused(hx)
    assert hx.container.event_log is not None and hx.container.queue is not None
    checker = FormChecker(
        hx.db,
        hx.container.event_log,
        hx.container.queue,
        hx.clock,
        HumanInputConfig(global_timeout_seconds=1800),
    )
    hx.clock.offset = timedelta(seconds=1801)
    await checker.tick()
    run = await hx.wait_status(run_id, "stopped")
    assert run.error == "Human input global timeout at node review"
    (form,) = await hx.forms_of(run_id)
    assert (form.status, form.closed_reason) == ("expired", "global_timeout")
    events = await hx.events(run_id)
    assert events[-1]["event"] == "workflow_finished"
    assert events[-1]["data"]["status"] == "stopped"
    assert events[-1]["data"]["error"] == "Human input global timeout at node review"
    assert names(events).count("workflow_started") == 1  # no resume
    await checker.tick()
    assert len(await hx.events(run_id)) == len(events)
    with pytest.raises(FormExpired):
        await hx.forms.submit(await hx.token(form_id), "approve", ANSWER, WEB, Submitter())


async def test_global_expiry_disabled_keeps_an_old_form_waiting(hx: Harness) -> None:
    run_id, _ = await paused(hx)
    assert hx.container.event_log is not None and hx.container.queue is not None
    checker = FormChecker(
        hx.db,
        hx.container.event_log,
        hx.container.queue,
        hx.clock,
        HumanInputConfig(global_timeout_seconds=0),
    )
    hx.clock.offset = timedelta(minutes=30)  # 8 days old is past the node deadline here; stay before it
    await checker.tick()
    (form,) = await hx.forms_of(run_id)
    assert form.status == "waiting"


async def test_two_concurrent_checkers_make_one_transition_and_one_resume(hx: Harness) -> None:
    run_id, _ = await paused(hx)
    hx.clock.offset = timedelta(hours=1, seconds=1)
    await asyncio.gather(hx.checker.tick(), hx.checker.tick())
    await hx.wait_status(run_id, "succeeded")
    assert len(await requests_of(hx, run_id)) == 1
    events = await hx.events(run_id)
    assert (
        sum(1 for e in events if e["event"] == "workflow_started" and e["data"]["reason"] == "resumption")
        == 1
    )

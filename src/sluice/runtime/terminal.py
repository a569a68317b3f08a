"""The terminal-event guarantee (streaming spec §6.1): one winner, an outbox, append after commit.

A run turns terminal only through ``end_run_now``: in one transaction, under the run lock, the
conditional update picks the single winner, running node executions become ``stopped``, and the
events to publish (``node_finished(stopped)`` per running node, then ``workflow_finished``) are
stored as the run's outbox. After commit they are appended and the outbox is cleared; if that
fails, the reaper appends them later (logical keys absorb repeats).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from sluice.adapters.sql import forms_repo
from sluice.adapters.sql import segments_repo as segs
from sluice.adapters.sql.tables import WorkflowRun
from sluice.runtime.dify_events import Mapped, RunFacts, encode_bounded, node_stopped, workflow_finished
from sluice.runtime.facts import naive, run_facts
from sluice.runtime.ports import EventLog, Fenced, NewEntry

log = logging.getLogger("sluice.runtime.terminal")

Extra = Callable[[AsyncSession, WorkflowRun], Awaitable[bool]]


def outbox_item(mapped: Mapped) -> dict[str, Any]:
    return {"e": mapped.event, "k": mapped.key, "n": mapped.node, "d": mapped.payload}


def outbox_entries(items: Sequence[dict[str, Any]], max_bytes: int = 1 << 20) -> list[NewEntry]:
    return [NewEntry(i["e"], encode_bounded(i["d"], max_bytes), i.get("k"), i.get("n")) for i in items]


@dataclass(frozen=True, slots=True)
class Ending:
    """What ends the run: status and error, plus the engine's figures when it got that far."""

    status: str
    error: str | None = None
    outputs: dict[str, Any] | None = None
    total_steps: int = 0
    total_tokens: int = 0
    exceptions_count: int = 0
    finished_at: datetime | None = None
    payload: Mapped | None = None  # the engine's own workflow_finished, when it produced one


@dataclass(frozen=True, slots=True)
class Outcome:
    won: bool
    fence: int = 0
    items: tuple[dict[str, Any], ...] = ()
    filled_at: datetime | None = None
    final_event: dict[str, Any] | None = None


async def commit_end(
    session: AsyncSession, run: WorkflowRun, ending: Ending, facts: RunFacts, *, node_error: str
) -> Outcome:
    """Inside the caller's transaction (run already locked): end the run if still live."""
    now = ending.finished_at or datetime.now(UTC)
    running = await segs.running_executions(session, run.id)
    items = [outbox_item(node_stopped(facts, row, node_error, now)) for row in running]
    mapped = ending.payload or workflow_finished(
        facts,
        status=ending.status,
        outputs=ending.outputs or {},
        error=ending.error,
        finished_at=now,
        total_steps=ending.total_steps,
        total_tokens=ending.total_tokens,
        exceptions_count=ending.exceptions_count,
    )
    items.append(outbox_item(mapped))
    filled_at = naive(datetime.now(UTC))
    data = mapped.payload["data"]
    won = await segs.end_run(
        session,
        run.id,
        status=data["status"],
        outputs=data.get("outputs") or {},
        error=data.get("error"),
        finished_at=naive(now),
        elapsed_time=float(data.get("elapsed_time") or 0),
        total_steps=int(data.get("total_steps") or 0),
        total_tokens=int(data.get("total_tokens") or 0),
        exceptions_count=int(data.get("exceptions_count") or 0),
        final_event=mapped.payload,
        pending=items,
        pending_at=filled_at,
    )
    if not won:
        return Outcome(False)
    await segs.set_execution_status(session, [row.id for row in running], "stopped", node_error)
    # human input: a waiting form never outlives its run (human-input.md §0, §6.5)
    closed = "run_stopped" if data["status"] == "stopped" else "run_ended"
    await forms_repo.expire_run_forms(session, run.id, closed, naive(now))
    await forms_repo.close_pause(session, run.id, closed, naive(now))
    await forms_repo.stop_paused_executions(session, run.id, node_error, naive(now))
    return Outcome(True, run.fence, tuple(items), filled_at, mapped.payload)


async def end_run_now(
    db: async_sessionmaker[AsyncSession],
    event_log: EventLog,
    run_id: str,
    ending: Ending,
    *,
    extra: Extra | None = None,
    segment: int | None = None,
    node_error: str = "Stopped by user",
    max_event_bytes: int = 1 << 20,
) -> Outcome:
    """End a run from outside a try (API stop, creation failure, reaper): lock, commit, append.

    ``extra`` runs in the same transaction after the lock; returning ``False`` aborts (no change).
    """
    async with db() as session, session.begin():
        run = await segs.lock_run(session, run_id)
        if run is None or run.status not in segs.LIVE_STATUSES:
            return Outcome(False)
        if extra is not None and not await extra(session, run):
            return Outcome(False)
        outcome = await commit_end(session, run, ending, run_facts(run, segment), node_error=node_error)
    if outcome.won:
        await publish_outbox(db, event_log, run_id, outcome, max_event_bytes=max_event_bytes)
    return outcome


async def publish_outbox(
    db: async_sessionmaker[AsyncSession],
    event_log: EventLog,
    run_id: str,
    outcome: Outcome,
    *,
    max_event_bytes: int = 1 << 20,
) -> bool:
    """Append a committed outbox, then clear it. A failure leaves it for the reaper."""
    try:
        await event_log.append(run_id, outbox_entries(outcome.items, max_event_bytes), fence=outcome.fence)
    except Fenced:
        log.warning("run %s: outbox append fenced at %s", run_id, outcome.fence)
        return False
    except Exception as exc:
        log.warning("run %s: outbox append failed (%s); the reaper retries", run_id, exc)
        return False
    try:
        async with db() as session, session.begin():
            await segs.clear_outbox(session, run_id, outcome.filled_at)
    except Exception as exc:  # appended already: the reaper's repeat is absorbed by the keys
        log.warning("run %s: clearing the outbox failed (%s)", run_id, exc)
    return True

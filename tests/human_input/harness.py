"""An in-process Sluice (the real composition root, embedded runner, in-process queue) over real
SQLite or PostgreSQL, with a clock the tests move for the checker and the submit deadlines."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlmodel import select

from sluice.adapters.sql import forms_repo, migrate
from sluice.adapters.sql import segments_repo as segs
from sluice.adapters.sql.tables import HumanInputForm, HumanInputRecipient, WorkflowRun
from sluice.bootstrap import Container, human_input_config
from sluice.services.apps import AppAuth
from sluice.services.forms import FormService
from sluice.services.forms_checker import FormChecker
from sluice.settings import HumanInputSettings, Settings

FIXTURES = Path(__file__).parent / "fixtures"


class MovableClock:
    """Real time plus an offset the test sets (the injected clock of human-input.md §3)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


@dataclass
class Harness:
    container: Container
    clock: MovableClock
    forms: FormService
    checker: FormChecker

    @property
    def db(self) -> Any:
        return self.container.db

    async def app(self, fixture: str = "review.yml") -> AppAuth:
        apps = self.container.apps
        outcome = await apps.import_app((FIXTURES / fixture).read_text())
        key = await apps.create_key(outcome.app_id)
        return await apps.authenticate(f"Bearer {key}")

    async def start(self, auth: AppAuth, inputs: dict[str, Any] | None = None, user: str = "u1") -> str:
        assert self.container.runs is not None
        started = await self.container.runs.start(auth, user, inputs or {"author": "Ann", "note": "looks ok"})
        return started.run_id

    async def run(self, run_id: str) -> WorkflowRun:
        async with self.db() as session:
            run = await segs.get_run(session, run_id)
        assert run is not None
        return run

    async def wait_status(self, run_id: str, *statuses: str, timeout: float = 30) -> WorkflowRun:
        async with asyncio.timeout(timeout):
            while True:
                run = await self.run(run_id)
                if run.status in statuses and run.pending_events is None:
                    return run
                await asyncio.sleep(0.05)

    async def forms_of(self, run_id: str) -> list[HumanInputForm]:
        """Every form of the run, whatever its status."""
        async with self.db() as session:
            stmt = select(HumanInputForm).where(HumanInputForm.workflow_run_id == run_id)
            return list((await session.exec(stmt)).all())

    async def recipients(self, form_id: str) -> list[HumanInputRecipient]:
        async with self.db() as session:
            return list(await forms_repo.recipients(session, form_id))

    async def token(self, form_id: str, kind: str = "standalone_web_app") -> str:
        return next(r.access_token for r in await self.recipients(form_id) if r.recipient_type == kind)

    async def events(self, run_id: str) -> list[dict[str, Any]]:
        log = self.container.event_log
        assert log is not None
        out: list[dict[str, Any]] = []
        after = "0-0"
        while True:
            entries = await log.read(run_id, after, 500)
            if not entries:
                return out
            out += [json.loads(e.payload) for e in entries]
            after = entries[-1].offset


def names(events: list[dict[str, Any]]) -> list[str]:
    return [str(e["event"]) for e in events]


@dataclass
class Backend:
    name: str
    url: str | None


async def open_harness(tmp: Path, database_url: str | None) -> AsyncIterator[Harness]:
    settings = Settings(
        mode="embedded",  # type: ignore[arg-type]
        data_dir=tmp,
        database_url=database_url,
        demo_app=False,
        human_input=HumanInputSettings(enable_timeout_task=False, global_timeout_seconds=7 * 86400),
    )
    migrate.upgrade(settings.sql_url)
    container = await Container.start(settings, role="api")
    clock = MovableClock()
    assert container.queue is not None and container.event_log is not None
    config = human_input_config(settings)
    forms = FormService(container.db, container.queue, clock, config)
    checker = FormChecker(container.db, container.event_log, container.queue, clock, config)
    try:
        yield Harness(container, clock, forms, checker)
    finally:
        await container.close()

"""Human-input forms, service side: look a form up by token for a surface, show it, and submit it
through one entry point (human-input.md §5–§6). A rejection leaves the form untouched; the
winning submission commits the form, its resume request and (for a paused run) the resume claim
in one transaction under the run lock, and enqueues the resumed segment's try after commit.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from sluice.adapters.sql import forms_repo as forms
from sluice.adapters.sql import repos
from sluice.adapters.sql import segments_repo as segs
from sluice.adapters.sql.tables import HumanInputForm, HumanInputRecipient, SegmentTry
from sluice.runtime.dify_events import epoch
from sluice.runtime.ports import JobQueue
from sluice.runtime.reaper import RUN_TRY_JOB
from sluice.services.apps import AppAuth
from sluice.services.errors import DomainError
from sluice.services.human_input import (
    SURFACE_TYPES,
    Clock,
    HumanInputConfig,
    claim_resume,
    definition_actions,
    definition_inputs,
    naive,
    resolved_defaults,
)

log = logging.getLogger("sluice.forms")

PARAGRAPH_MAX = 100_000
FILE_TYPES = frozenset({"image", "document", "audio", "video", "custom"})


class FormNotFound(DomainError):
    status = 404
    code = "not_found"
    message = "Form not found"


class FormAlreadySubmitted(DomainError):
    status = 412
    code = "human_input_form_submitted"


class FormExpired(DomainError):
    status = 412
    code = "human_input_form_expired"


class RecipientSurfaceMismatch(DomainError):
    status = 403
    code = "recipient_surface_mismatch"
    message = "This form's recipient can't be submitted via the OpenAPI surface."
    hint = "Action it through its channel (web app or console)."


class InvalidFormData(DomainError):
    code = "invalid_form_data"

    def __init__(self, details: list[dict[str, Any]]) -> None:
        super().__init__(str(details[0]["msg"]))
        self.details = details


@dataclass(frozen=True, slots=True)
class Submitter:
    user_id: str | None = None
    end_user_id: str | None = None


@dataclass(frozen=True, slots=True)
class Found:
    form: HumanInputForm
    recipient: HumanInputRecipient


def submitted_error(form_id: str) -> FormAlreadySubmitted:
    return FormAlreadySubmitted(f"This form has already been submitted by another user, form_id={form_id}")


def expired_error(form_id: str) -> FormExpired:
    return FormExpired(f"This form has expired, form_id={form_id}")


class FormService:
    def __init__(
        self,
        db: async_sessionmaker[AsyncSession],
        queue: JobQueue,
        clock: Clock,
        config: HumanInputConfig,
        file_list_max: int = 10,
    ) -> None:
        self._db = db
        self._queue = queue
        self._clock = clock
        self._config = config
        self._file_list_max = file_list_max

    def _now(self) -> datetime:
        return naive(self._clock.now())

    # -- lookup (§5.3 order: token → app → surface → submitted → expired) -----------------------------

    async def find(self, token: str, surface: str | None, *, app_id: str | None = None) -> Found:
        async with self._db() as session:
            found = await forms.by_token(session, token)
        if found is None:
            raise FormNotFound()
        form, recipient = found
        if app_id is not None and form.app_id != app_id:
            raise FormNotFound()
        allowed = SURFACE_TYPES.get(surface or "")
        if allowed is not None and recipient.recipient_type not in allowed:
            if surface == "openapi":
                raise RecipientSurfaceMismatch()
            raise FormNotFound()
        return Found(form, recipient)

    def check_open(self, form: HumanInputForm) -> None:
        """412 for a form that can no longer be answered (also past a deadline the checker has
        not handled yet, §7 scenario 17)."""
        if form.status == "submitted":
            raise submitted_error(form.id)
        if form.status != "waiting" or self._overdue(form, self._now()):
            raise expired_error(form.id)

    def _overdue(self, form: HumanInputForm, now: datetime) -> bool:
        if form.expiration_time <= now:
            return True
        g = self._config.global_timeout_seconds
        return g > 0 and form.workflow_run_id is not None and form.created_at <= now - timedelta(seconds=g)

    async def view(self, token: str, surface: str | None, *, app_id: str | None = None) -> dict[str, Any]:
        """The GET body of P1/S1/O1 (§5.2)."""
        found = await self.find(token, surface, app_id=app_id)
        self.check_open(found.form)
        return form_body(found.form)

    async def app_name(self, app_id: str) -> str:
        async with self._db() as session:
            app = await repos.get_app(session, app_id)
        return app.name if app is not None else ""

    async def end_user_id(self, auth: AppAuth, user: str) -> str:
        """The end user of S2's ``user`` (looked up or created per app, §5.2)."""
        async with self._db() as session, session.begin():
            row = await repos.end_user(session, auth.app, "service_api", user, anonymous=False)
            return row.id

    # -- submit (§6) --------------------------------------------------------------------------------

    async def submit(
        self,
        token: str,
        action: Any,
        inputs: Any,
        surface: str | None,
        submitter: Submitter,
        *,
        app_id: str | None = None,
    ) -> HumanInputForm:
        """The one entry point of every POST route, the page and the CLI."""
        found = await self.find(token, surface, app_id=app_id)
        form = found.form
        self.check_open(form)
        data = self.validate(form, action, inputs)
        now = self._now()
        resumed: SegmentTry | None = None
        async with self._db() as session, session.begin():
            run = await segs.lock_run(session, form.workflow_run_id) if form.workflow_run_id else None
            won = await forms.submit(
                session,
                form.id,
                action_id=str(action),
                data=data,
                now=now,
                global_seconds=self._config.global_timeout_seconds,
                user_id=submitter.user_id,
                end_user_id=submitter.end_user_id,
                recipient_id=found.recipient.id,
            )
            if won and run is not None and form.form_kind == "runtime":
                await forms.add_request(session, run.id, form.id, "submitted", now)
                resumed = await claim_resume(session, run, now)
        if not won:
            async with self._db() as session:
                current = await forms.get_form(session, form.id)
            if current is not None and current.status == "submitted":
                raise submitted_error(form.id)
            raise expired_error(form.id)
        if resumed is not None:
            await self._enqueue(resumed)
        return form

    async def _enqueue(self, try_: SegmentTry) -> None:
        try:
            await self._queue.enqueue(try_.job_id, RUN_TRY_JOB, try_.id)
        except Exception as exc:  # the reaper enqueues a try that was never enqueued
            log.warning("run %s: enqueueing the resume failed (%s)", try_.run_id, exc)

    # -- validation (§6.2) --------------------------------------------------------------------------

    def validate(self, form: HumanInputForm, action: Any, inputs: Any) -> dict[str, Any]:
        problems: list[dict[str, Any]] = []
        if inputs is None:
            inputs = {}
        if not isinstance(inputs, Mapping):
            raise InvalidFormData(
                [{"loc": ["inputs"], "type": "type_error", "msg": "inputs must be an object"}]
            )
        actions = {str(a.get("id")) for a in definition_actions(form)}
        if not isinstance(action, str) or action not in actions:
            problems.append({"loc": ["action"], "type": "invalid_action", "msg": f"Invalid action: {action}"})
        declared = definition_inputs(form)
        missing = [
            str(i.get("output_variable_name"))
            for i in declared
            if i.get("output_variable_name") not in inputs
        ]
        if missing:
            problems.append(
                {
                    "loc": ["inputs", *missing[:1]],
                    "type": "missing",
                    "msg": f"Missing required inputs: {', '.join(missing)}",
                }
            )
        data: dict[str, Any] = {}
        for item in declared:
            name = str(item.get("output_variable_name"))
            if name not in inputs:
                continue
            value, error = self._check_value(item, inputs[name])
            if error is not None:
                problems.append({"loc": ["inputs", name], "type": "invalid_value", "msg": error})
            else:
                data[name] = value
        if problems:
            raise InvalidFormData(problems)
        return data

    def _check_value(self, item: Mapping[str, Any], value: Any) -> tuple[Any, str | None]:
        name, kind = str(item.get("output_variable_name")), str(item.get("type"))
        if kind == "paragraph":
            if value is None:
                return "", None
            if isinstance(value, bool | int | float):
                value = json.dumps(value)
            if not isinstance(value, str):
                return None, f"Invalid value for paragraph input '{name}': expected a string"
            if len(value) > PARAGRAPH_MAX:
                return (
                    None,
                    f"Invalid value for paragraph input '{name}': longer than {PARAGRAPH_MAX} characters",
                )
            return value, None
        if kind == "select":
            options = [str(o) for o in (item.get("option_source") or {}).get("value") or []]
            if not isinstance(value, str) or value not in options:
                return None, f"Invalid value for select input '{name}': {value!r} is not one of the options"
            return value, None
        if kind == "file":
            error = _file_error(item, value)
            return (
                (value, None) if error is None else (None, f"Invalid value for file input '{name}': {error}")
            )
        if kind == "file-list":
            if not isinstance(value, list):
                return None, f"Invalid value for file list input '{name}': expected a list of files"
            limit = int(item.get("number_limits") or 0)
            cap = min(limit, self._file_list_max) if limit > 0 else self._file_list_max
            if len(value) > cap:
                return None, f"Invalid value for file list input '{name}': at most {cap} files"
            for entry in value:
                error = _file_error(item, entry)
                if error is not None:
                    return None, f"Invalid value for file list input '{name}': {error}"
            return value, None
        return value, None


def _file_error(item: Mapping[str, Any], value: Any) -> str | None:
    if not isinstance(value, Mapping):
        return "expected a file object"
    method = value.get("transfer_method")
    allowed_methods = item.get("allowed_file_upload_methods") or ["local_file", "remote_url"]
    if method not in allowed_methods:
        return f"transfer method {method!r} is not allowed"
    if method == "local_file" and not value.get("upload_file_id"):
        return "upload_file_id is required"
    if method == "remote_url" and not str(value.get("url") or "").startswith(("http://", "https://")):
        return "url is required"
    types = item.get("allowed_file_types") or []
    if types and value.get("type") not in types:
        return f"file type {value.get('type')!r} is not allowed"
    return None


def form_body(form: HumanInputForm) -> dict[str, Any]:
    """``{form_content, inputs, resolved_default_values, user_actions, expiration_time}`` (§5.2)."""
    return {
        "form_content": form.rendered_content,
        "inputs": definition_inputs(form),
        "resolved_default_values": resolved_defaults(form),
        "user_actions": definition_actions(form),
        "expiration_time": epoch(form.expiration_time),
    }

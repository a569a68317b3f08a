"""Human input, runtime side: the engine's ``HumanInputService`` port (find or create the form of a
node execution and say where it stands, human-input.md §2.1–2.2), the pause hook the segment runner
calls inside its pause transaction (§2.3), and the resume claim shared by submit, checker and pause
(§6.4): under the run lock, a ``paused`` run with open requests consumes them all and gets a new
segment (the attempt) whose first try is enqueued after commit.
"""

from __future__ import annotations

import logging
import re
import secrets
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from sluice.adapters.sql import forms_repo as forms
from sluice.adapters.sql import segments_repo as segs
from sluice.adapters.sql.tables import (
    HumanInputDelivery,
    HumanInputForm,
    HumanInputRecipient,
    RunSegment,
    SegmentTry,
    WorkflowRun,
)
from sluice.engine.ports import (
    FormDecision,
    FormFailed,
    FormPending,
    FormSubmitted,
    FormTimedOut,
    HumanInputRequest,
)
from sluice.runtime.dify_events import Mapped, RunFacts, envelope, epoch
from sluice.services.human_input_mail import FormMailer
from sluice.services.human_input_view import (
    CHANNEL,
    PRIORITY,
    SURFACE_TYPES,
    definition_actions,
    definition_inputs,
    disposition,
    required_data,
    resolved_defaults,
    stringify,
    surface_of,
)

__all__ = [
    "CHANNEL",
    "PRIORITY",
    "SURFACE_TYPES",
    "HumanInputConfig",
    "HumanInputRuntime",
    "claim_resume",
    "definition_actions",
    "definition_inputs",
    "disposition",
    "required_data",
    "resolved_defaults",
    "stringify",
    "surface_of",
]

log = logging.getLogger("sluice.human_input")

TOKEN_ALPHABET = string.ascii_letters + string.digits
VARIABLE = re.compile(r"\{\{#([A-Za-z0-9_]{1,50}(?:\.[A-Za-z_][A-Za-z0-9_]{0,29}){1,10})#\}\}")
NO_WEBAPP_SOURCES = frozenset({"debugger", "explore", "cli"})
CONSOLE_SOURCES = frozenset({"debugger", "cli"})


class Clock(Protocol):
    def now(self) -> datetime: ...


def new_token() -> str:
    """22 characters of ``[A-Za-z0-9]`` (≈131 bits), the only credential of the public page."""
    return "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(22))


def naive(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


@dataclass(frozen=True, slots=True)
class HumanInputConfig:
    global_timeout_seconds: int = 604800
    operator_email: str | None = None


# -- the resume claim (§6.4) ------------------------------------------------------------------------


async def claim_resume(session: AsyncSession, run: WorkflowRun, now: datetime) -> SegmentTry | None:
    """Inside the caller's transaction, run locked: a ``paused`` run with open requests consumes
    them, closes its pause and gets a new segment and try (enqueue ``try.job_id`` after commit)."""
    if run.status != "paused" or not await forms.open_requests(session, run.id):
        return None
    current = await segs.current_segment(session, run.id)
    number = (current.number + 1) if current is not None else run.segment + 1
    segment = RunSegment(run_id=run.id, number=number, reason="resumption", status="queued", created_at=now)
    session.add(segment)
    await session.flush()
    await forms.consume_requests(session, run.id, segment.id, now)
    await forms.close_pause(session, run.id, "resumed", now)
    try_ = await segs.add_try(session, run, segment, 1)
    await session.flush()
    await session.exec(
        update(WorkflowRun)
        .where(col(WorkflowRun.id) == run.id, col(WorkflowRun.status) == "paused")
        .values(status="running", segment=number, pending_events=None, pending_events_at=None)
    )
    return try_


class HumanInputRuntime:
    """The engine's ``HumanInputService`` and the runner's pause hook."""

    def __init__(self, db: async_sessionmaker[AsyncSession], clock: Clock, config: HumanInputConfig) -> None:
        self._db = db
        self._clock = clock
        self._config = config
        self.mailer: FormMailer | None = None  # set by the composition root
        self._to_mail: dict[str, list[str]] = {}

    # -- HumanInputService (§2.1) -------------------------------------------------------------------

    async def decide(self, request: HumanInputRequest) -> FormDecision:
        now = naive(self._clock.now())
        async with self._db() as session, session.begin():
            form = await forms.form_by_execution(session, request.execution_id)
            if form is None:
                run = await segs.get_run(session, request.run_id)
                if run is None:
                    return FormFailed("The run of this form no longer exists")
                built = self._build(request, run, now)
                if isinstance(built, FormFailed):
                    return built
                try:
                    async with session.begin_nested():
                        await forms.add_form(session, *built)
                except IntegrityError:  # a duplicate insert reloads the existing row (§2.2)
                    form = await forms.form_by_execution(session, request.execution_id)
                    if form is None:
                        raise
                else:
                    return FormPending(built[0].id)
            return await self._decide_existing(session, form, now)

    async def _decide_existing(
        self, session: AsyncSession, form: HumanInputForm, now: datetime
    ) -> FormDecision:
        attempt = "node"
        if form.status == "waiting":
            if form.expiration_time <= now and await forms.close_form(
                session, form.id, "timeout", "node_timeout", now
            ):
                await forms.consume_requests(session, form.workflow_run_id or "", attempt, now, [form.id])
                return FormTimedOut(form.id, epoch(form.expiration_time) or 0)
            return FormPending(form.id)
        await forms.consume_requests(session, form.workflow_run_id or "", attempt, now, [form.id])
        if form.status == "submitted":
            if not form.selected_action_id:
                return FormFailed("The submitted form has no selected action")
            titles = {str(a.get("id")): str(a.get("title") or "") for a in definition_actions(form)}
            return FormSubmitted(
                form.id,
                form.selected_action_id,
                titles.get(form.selected_action_id, ""),
                form.submitted_data or {},
            )
        if form.status == "timeout":
            return FormTimedOut(form.id, epoch(form.expiration_time) or 0)
        return FormFailed("cannot resume globally expired form")

    def _build(
        self, request: HumanInputRequest, run: WorkflowRun, now: datetime
    ) -> tuple[HumanInputForm, list[HumanInputDelivery], list[HumanInputRecipient]] | FormFailed:
        data = request.data
        timeout = int(data.get("timeout") or 36)
        unit = 86400 if data.get("timeout_unit") == "day" else 3600
        expiration = now + timedelta(seconds=timeout * unit)
        inputs: list[dict[str, Any]] = []
        defaults: dict[str, Any] = {}
        for raw in data.get("inputs") or []:
            if not isinstance(raw, Mapping):
                continue
            item = dict(raw)
            name = str(item.get("output_variable_name"))
            default = item.get("default")
            if isinstance(default, Mapping):
                if default.get("type") == "variable":
                    key = ".".join(str(s) for s in default.get("selector") or [])
                    if key in request.values:
                        defaults[name] = request.values[key]
                else:
                    defaults[name] = default.get("value")
            source = item.get("option_source")
            if isinstance(source, Mapping) and source.get("type") == "variable":
                key = ".".join(str(s) for s in source.get("selector") or [])
                if key in request.values:
                    value = request.values[key]
                    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                        return FormFailed(f"Select options of '{name}' must be an array of strings")
                    item["option_source"] = {**dict(source), "value": list(value)}
            inputs.append(item)
        source_kind = run.created_from
        methods = [
            dict(m)
            for m in data.get("delivery_methods") or []
            if isinstance(m, Mapping) and m.get("enabled", True) and m.get("type") in ("webapp", "email")
        ]
        if source_kind in NO_WEBAPP_SOURCES:
            has_webapp = any(m.get("type") == "webapp" for m in methods)
            methods = [m for m in methods if m.get("type") != "webapp"]
        else:
            has_webapp = any(m.get("type") == "webapp" for m in methods)
        display = source_kind in CONSOLE_SOURCES or has_webapp
        form = HumanInputForm(
            tenant_id=run.tenant_id,
            app_id=run.app_id,
            workflow_run_id=run.id,
            node_id=request.node_id,
            node_execution_id=request.execution_id,
            rendered_content=request.rendered_content,
            expiration_time=expiration,
            created_at=now,
            updated_at=now,
        )
        form.form_definition = {
            "form_content": str(data.get("form_content") or ""),
            "inputs": inputs,
            "user_actions": [dict(a) for a in data.get("user_actions") or [] if isinstance(a, Mapping)],
            "rendered_content": request.rendered_content,
            "expiration_time": epoch(expiration),
            "default_values": defaults,
            "node_title": request.node_title,
            "display_in_ui": display,
        }
        deliveries: list[HumanInputDelivery] = []
        recipients: list[HumanInputRecipient] = []

        def recipient(delivery: HumanInputDelivery, kind: str, payload: dict[str, Any]) -> None:
            recipients.append(
                HumanInputRecipient(
                    form_id=form.id,
                    delivery_id=delivery.id,
                    recipient_type=kind,
                    recipient_payload={"TYPE": kind, **payload},
                    access_token=new_token(),
                    send_status="pending" if kind.startswith("email") else None,
                )
            )

        for method in methods:
            if method.get("type") == "webapp":
                web = HumanInputDelivery(
                    form_id=form.id, delivery_method_type="webapp", delivery_config_id=_id_or_none(method)
                )
                deliveries.append(web)
                recipient(web, "standalone_web_app", {})
                continue
            config = dict(method.get("config") or {})
            for field in ("subject", "body"):  # variables substituted as text (§9)
                if isinstance(config.get(field), str):
                    config[field] = VARIABLE.sub(
                        lambda m: stringify(request.values.get(m.group(1))), config[field]
                    )
            mail = HumanInputDelivery(
                form_id=form.id,
                delivery_method_type="email",
                delivery_config_id=_id_or_none(method),
                channel_payload=dict(config),
                send_status="pending",
            )
            deliveries.append(mail)
            seen: set[str] = set()
            items = (config.get("recipients") or {}).get("items") or []
            debug = bool(config.get("debug_mode")) and source_kind in CONSOLE_SOURCES
            if debug:
                items = [{"type": "external", "email": self._config.operator_email or ""}]
            for item in items:
                if not isinstance(item, Mapping):
                    continue
                address = str(item.get("email") or "").strip().lower()
                if not address or address in seen:
                    continue
                seen.add(address)
                recipient(mail, "email_external", {"email": address})
        synthetic = HumanInputDelivery(
            form_id=form.id,
            delivery_method_type="webapp",
            channel_payload={"type": "console", "internal": True},
        )
        deliveries.append(synthetic)
        if source_kind in CONSOLE_SOURCES or (source_kind == "explore" and has_webapp):
            recipient(synthetic, "console", {})
        recipient(synthetic, "backstage", {})
        return form, deliveries, recipients

    # -- the runner's pause hook (§2.3) --------------------------------------------------------------

    async def pause_events(
        self,
        session: AsyncSession,
        run: WorkflowRun,
        facts: RunFacts,
        outputs: Mapping[str, Any] | None,
        reasons: Sequence[Mapping[str, Any]],
    ) -> list[Mapped]:
        """``human_input_required`` per form in reason order, then ``workflow_paused``; stores the
        pause row (reasons keep only ``form_id``/``node_id``)."""
        now = naive(self._clock.now())
        surface = surface_of(run.created_from)
        events: list[Mapped] = []
        full_reasons: list[dict[str, Any]] = []
        paused_nodes: list[str] = []
        for reason in reasons:
            node_id = str(reason.get("node_id") or "")
            if node_id and node_id not in paused_nodes:
                paused_nodes.append(node_id)
            form_id = str(reason.get("form_id") or "")
            form = await forms.get_form(session, form_id) if form_id else None
            if form is None:
                full_reasons.append(dict(reason))
                continue
            data = required_data(form, await forms.recipients(session, form.id), surface)
            key = f"hir:{form.id}:{facts.segment}"
            events.append(
                Mapped("human_input_required", key, None, envelope(facts, "human_input_required", data))
            )
            full_reasons.append({"TYPE": "human_input_required", **data})
            if form.status == "waiting":
                self._to_mail.setdefault(run.id, []).append(form.id)
        await forms.put_pause(
            session,
            run.workflow_id,
            run.id,
            facts.segment,
            [{"form_id": r.get("form_id", ""), "node_id": r.get("node_id", "")} for r in reasons],
            now,
        )
        elapsed = (now - run.created_at).total_seconds()
        paused = {
            "workflow_run_id": run.id,
            "paused_nodes": paused_nodes,
            "outputs": {} if surface == "service_api" else dict(outputs or {}),
            "reasons": full_reasons,
            "status": "paused",
            "created_at": epoch(run.created_at),
            "elapsed_time": round(elapsed, 6),
            "total_tokens": run.total_tokens,
            "total_steps": run.total_steps,
        }
        events.append(
            Mapped("workflow_paused", f"wp:{facts.segment}", None, envelope(facts, "workflow_paused", paused))
        )
        return events

    def committed(self, run_id: str) -> None:
        form_ids = self._to_mail.pop(run_id, [])
        if self.mailer is not None and form_ids:
            self.mailer.schedule(form_ids)

    async def after_pause(self, session: AsyncSession, run_id: str) -> SegmentTry | None:
        """Still inside the pause transaction: a form answered after the node asked (and before
        this commit) left an open request; resume at once instead of stranding it."""
        run = await segs.get_run(session, run_id)
        if run is None:
            return None
        return await claim_resume(session, run, naive(self._clock.now()))


def _id_or_none(method: Mapping[str, Any]) -> str | None:
    value = method.get("id")
    return str(value)[:36] if value else None

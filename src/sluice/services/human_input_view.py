"""What a surface is shown of a form (human-input.md §2.3, §4): dispositions and the
``human_input_required`` payload, built from the stored definition; never stored themselves."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sluice.adapters.sql.tables import HumanInputForm, HumanInputRecipient
from sluice.runtime.dify_events import epoch

PRIORITY = {"backstage": 0, "console": 1, "standalone_web_app": 2}
CHANNEL = {
    "email_member": "email",
    "email_external": "email",
    "standalone_web_app": "web_app",
    "console": "console",
    "backstage": "console",
}
SURFACE_TYPES = {
    "service_api": frozenset({"standalone_web_app"}),
    "openapi": frozenset({"standalone_web_app"}),
    "console": frozenset({"console", "backstage"}),
}


def surface_of(created_from: str) -> str | None:
    """The emitting surface of a run's live stream (§4)."""
    return {"service-api": "service_api", "openapi": "openapi"}.get(created_from)


def disposition(rows: Sequence[HumanInputRecipient], surface: str | None) -> tuple[str | None, list[str]]:
    """``(form_token, approval_channels)`` of a form for a surface (§4): one helper for live pauses,
    snapshots and blocking bodies."""
    pickable = [r for r in rows if r.recipient_type in PRIORITY and r.access_token]
    if surface is None:
        best = min(pickable, key=lambda r: PRIORITY[r.recipient_type], default=None)
        return (best.access_token if best else None), []
    allowed = SURFACE_TYPES.get(surface, frozenset())
    chosen = min(
        (r for r in pickable if r.recipient_type in allowed),
        key=lambda r: PRIORITY[r.recipient_type],
        default=None,
    )
    others = {CHANNEL[r.recipient_type] for r in rows if r is not chosen and r.recipient_type in CHANNEL}
    return (chosen.access_token if chosen else None), sorted(others)


def stringify(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def definition_inputs(form: HumanInputForm) -> list[dict[str, Any]]:
    return [dict(i) for i in form.form_definition.get("inputs") or []]


def definition_actions(form: HumanInputForm) -> list[dict[str, Any]]:
    d = form.form_definition
    return [dict(a) for a in d.get("user_actions") or d.get("actions") or []]


def resolved_defaults(form: HumanInputForm) -> dict[str, str]:
    d = form.form_definition
    values = d.get("default_values") or d.get("resolved_default_values") or {}
    return {
        str(i.get("output_variable_name")): stringify(values.get(str(i.get("output_variable_name"))))
        for i in definition_inputs(form)
    }


def required_data(
    form: HumanInputForm, rows: Sequence[HumanInputRecipient], surface: str | None
) -> dict[str, Any]:
    """``human_input_required.data`` for a surface (§2.3)."""
    token, channels = disposition(rows, surface)
    return {
        "form_id": form.id,
        "node_id": form.node_id,
        "node_title": form.form_definition.get("node_title", ""),
        "form_content": form.rendered_content,
        "inputs": definition_inputs(form),
        "actions": definition_actions(form),
        "display_in_ui": bool(form.form_definition.get("display_in_ui", False)),
        "form_token": token,
        "approval_channels": channels,
        "resolved_default_values": resolved_defaults(form),
        "expiration_time": epoch(form.expiration_time),
    }

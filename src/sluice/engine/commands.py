"""Commands a segment accepts while it runs (§5.11)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Abort:
    """User stop: the run ends ``run_aborted{cause: "user"}``."""

    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Pause:
    """Scheduled pause: nothing new starts, running nodes finish, then ``run_paused``."""

    reason: str = "unknown reason"


@dataclass(frozen=True, slots=True)
class UpdateVariables:
    """Writes ``[{selector, value_type, value}]`` to the root pool and every live child pool
    holding the selector."""

    updates: Sequence[Mapping[str, Any]] = field(default_factory=tuple)


Command = Abort | Pause | UpdateVariables


def parse_command(raw: Any) -> Command | None:
    """A command object, or its dict form ``{"type": "abort"|"pause"|"update_variables", ...}``."""
    if isinstance(raw, Abort | Pause | UpdateVariables):
        return raw
    if not isinstance(raw, Mapping):
        return None
    kind = raw.get("type")
    if kind == "abort":
        reason = raw.get("reason")
        return Abort(str(reason) if reason else None)
    if kind == "pause":
        return Pause(str(raw.get("reason") or "unknown reason"))
    if kind == "update_variables":
        updates = raw.get("updates") or ()
        return UpdateVariables(tuple(u for u in updates if isinstance(u, Mapping)))
    return None

"""Import findings (§2.3): every problem of a DSL file, with a stable code and a location."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Finding:
    code: str
    level: str
    message: str
    loc: tuple[str | int, ...] = ()
    node_id: str | None = None
    edge_id: str | None = None
    details: tuple[dict[str, Any], ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "code": self.code,
            "level": self.level,
            "message": self.message,
            "loc": list(self.loc),
        }
        if self.node_id is not None:
            out["node_id"] = self.node_id
        if self.edge_id is not None:
            out["edge_id"] = self.edge_id
        if self.details:
            out["details"] = list(self.details)
        return out


class Findings:
    """Collects findings; ``errors`` tells whether the current stage must stop the import."""

    def __init__(self) -> None:
        self.items: list[Finding] = []

    def error(self, code: str, message: str, loc: tuple[str | int, ...] = (), **kw: Any) -> None:
        self.items.append(Finding(code, ERROR, message, loc, **kw))

    def warn(self, code: str, message: str, loc: tuple[str | int, ...] = (), **kw: Any) -> None:
        self.items.append(Finding(code, WARNING, message, loc, **kw))

    @property
    def errors(self) -> bool:
        return any(f.level == ERROR for f in self.items)

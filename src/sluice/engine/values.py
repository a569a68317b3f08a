"""Plain-value conventions of the variable pool and the two text renderings of values (§3.1, §3.3).

Pool values are plain Python values (None, bool, int, float, str, dict, list); a file is a dict
carrying ``dify_model_identity == "__dify__file__"``; a secret is a ``Secret`` (a str subclass that
masks itself when emitted). ``ABSENT`` marks a selector that resolves to nothing.
"""

from __future__ import annotations

import json
from typing import Any, Final

FILE_IDENTITY: Final = "__dify__file__"


class _Absent:
    __slots__ = ()

    def __repr__(self) -> str:
        return "ABSENT"

    def __bool__(self) -> bool:
        return False


ABSENT: Final = _Absent()


class Secret(str):
    """A secret environment value: the real text inside the run, masked in every emitted event."""

    __slots__ = ()

    def masked(self) -> str:
        return mask_secret(str(self))


def mask_secret(value: str) -> str:
    if not value:
        return value
    if len(value) > 8:
        return value[:6] + "*" * 12 + value[-2:]
    return "*" * 20


def is_file(value: Any) -> bool:
    return isinstance(value, dict) and value.get("dify_model_identity") == FILE_IDENTITY


def segment_type(value: Any) -> str:
    """The Dify segment type name of a plain value."""
    if value is None:
        return "none"
    if isinstance(value, Secret):
        return "secret"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "file" if is_file(value) else "object"
    if isinstance(value, list):
        return _array_type(value)
    return "object"


def _array_type(items: list[Any]) -> str:
    kinds = {segment_type(item) for item in items}
    if not kinds:
        return "array[any]"
    if kinds <= {"integer", "float"}:
        return "array[number]"
    if len(kinds) == 1:
        kind = next(iter(kinds))
        if kind in ("string", "object", "boolean", "file"):
            return f"array[{kind}]"
    return "array[any]"


def _file_link(value: dict[str, Any]) -> str:
    url = value.get("url") or value.get("remote_url") or ""
    name = value.get("filename") or url
    if value.get("type") == "image":
        return f"![{value.get('filename') or ''}]({url})"
    return f"[{name}]({url})"


def render_text(value: Any) -> str:
    """The *text* rendering used everywhere except answers and response streams."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool | int | float):
        return str(value)
    if isinstance(value, dict):
        if is_file(value):
            return ""
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        if not value or all(is_file(item) for item in value):
            return ""
        if all(isinstance(item, str) for item in value):
            return json.dumps(value, ensure_ascii=False)
        return str(value)
    return str(value)


def render_markdown(value: Any) -> str:
    """The *markdown* rendering of answers and response streams."""
    if isinstance(value, dict):
        if is_file(value):
            return _file_link(value)
        return json.dumps(value, ensure_ascii=False, indent=2)
    if isinstance(value, list):
        if not value:
            return ""
        if all(is_file(item) for item in value):
            return "\n".join(_file_link(item) for item in value)
        return "\n".join(f"- {item}" for item in value)
    return render_text(value)


_PLAIN = frozenset({str, int, float, bool, type(None)})


def to_jsonable(value: Any, *, mask: bool = True) -> Any:
    """A value as it appears in emitted events: secrets masked, containers copied."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is dict:
        return {
            k if type(k) is str else str(k): v if type(v) in _PLAIN else to_jsonable(v, mask=mask)
            for k, v in value.items()
        }
    if isinstance(value, Secret):
        return value.masked() if mask else str(value)
    if isinstance(value, dict):
        return {str(k): to_jsonable(v, mask=mask) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [v if type(v) in _PLAIN else to_jsonable(v, mask=mask) for v in value]
    return value


def zero_value(type_name: str) -> Any:
    if type_name.startswith("array"):
        return []
    return {"object": {}, "string": "", "number": 0, "integer": 0, "float": 0.0, "boolean": False}.get(
        type_name
    )

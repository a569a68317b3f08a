"""Small checks for node ``data`` (import stage "node schemas", §2.3): each returns problems as
``(loc, message)`` pairs so one file reports every problem of every node at once."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator, Mapping
from typing import Any

from sluice.engine.nodes.base import Loc, Problems
from sluice.engine.values import is_file

VALUE_TYPES = frozenset(
    {
        "string",
        "number",
        "object",
        "boolean",
        "array[string]",
        "array[number]",
        "array[object]",
        "array[boolean]",
    }
)


def is_selector(value: Any, *, exact: bool = False) -> bool:
    return (
        isinstance(value, list | tuple)
        and (len(value) == 2 if exact else len(value) >= 2)
        and all(isinstance(part, str) and part for part in value)
    )


def mapping(
    data: Mapping[str, Any], key: str, problems: Problems, *, required: bool = False
) -> Mapping[str, Any]:
    value = data.get(key)
    if value is None:
        if required:
            problems.append(((key,), "field required"))
        return {}
    if not isinstance(value, Mapping):
        problems.append(((key,), "must be a mapping"))
        return {}
    return value


def items(data: Mapping[str, Any], key: str, problems: Problems, *, required: bool = False) -> list[Any]:
    value = data.get(key)
    if value is None:
        if required:
            problems.append(((key,), "field required"))
        return []
    if not isinstance(value, list):
        problems.append(((key,), "must be a list"))
        return []
    return value


def enum(
    data: Mapping[str, Any],
    key: str,
    allowed: Collection[str],
    problems: Problems,
    *,
    loc: Loc = (),
    default: Any = None,
) -> Any:
    value = data.get(key, default)
    if value not in allowed:
        choices = ", ".join(sorted(allowed))
        problems.append(((*loc, key), f"must be one of {choices}, got {value!r}"))
    return value


def string(
    data: Mapping[str, Any], key: str, problems: Problems, *, loc: Loc = (), required: bool = True
) -> Any:
    value = data.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        problems.append(((*loc, key), "must be a string"))
    return value


def integer(
    data: Mapping[str, Any],
    key: str,
    problems: Problems,
    *,
    loc: Loc = (),
    default: Any = None,
    minimum: int | None = None,
    maximum: int | None = None,
) -> Any:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        problems.append(((*loc, key), "must be an integer"))
        return value
    if minimum is not None and value < minimum:
        problems.append(((*loc, key), f"must be at least {minimum}"))
    if maximum is not None and value > maximum:
        problems.append(((*loc, key), f"must be at most {maximum}"))
    return value


def boolean(data: Mapping[str, Any], key: str, problems: Problems, *, loc: Loc = ()) -> None:
    value = data.get(key)
    if value is not None and not isinstance(value, bool):
        problems.append(((*loc, key), "must be a boolean"))


def selector(
    data: Mapping[str, Any],
    key: str,
    problems: Problems,
    *,
    loc: Loc = (),
    exact: bool = False,
    required: bool = True,
) -> None:
    value = data.get(key)
    if value is None or value == []:
        if required:
            problems.append(((*loc, key), "field required"))
        return
    if not is_selector(value, exact=exact):
        problems.append(
            (
                (*loc, key),
                "must be a selector of at least two names"
                if not exact
                else "must be a selector of two names",
            )
        )


def named_variables(
    data: Mapping[str, Any], problems: Problems, key: str = "variables"
) -> Iterator[tuple[Loc, Any]]:
    """``[{variable, value_selector}]`` lists: shape problems, and the selectors read."""
    for i, item in enumerate(items(data, key, problems)):
        if not isinstance(item, Mapping):
            problems.append(((key, i), "must be a mapping"))
            continue
        if not isinstance(item.get("variable"), str):
            problems.append(((key, i, "variable"), "must be a string"))
        yield (key, i, "value_selector"), item.get("value_selector")


def type_mismatch(var_type: str, value: Any) -> str | None:
    """Whether ``value`` fits a declared value type (``None``) or the reference's mismatch text."""
    if value is None:
        return f"Type mismatch: expected {var_type}, but got None"
    if isinstance(value, list) and not value:
        return (
            None
            if var_type.startswith("array")
            else f"Type mismatch: expected {var_type}, but got empty list"
        )
    actual = inferred_type(value)
    if actual == var_type or (var_type == "number" and actual in ("integer", "float", "number")):
        return None
    if var_type == "array[number]" and actual == "array[number]":
        return None
    return f"Type mismatch: expected {var_type}, but got {actual}, value={value}"


def inferred_type(value: Any) -> str:
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
        kinds = {inferred_type(v) for v in value}
        if kinds <= {"integer", "float"}:
            return "array[number]"
        if len(kinds) == 1:
            kind = next(iter(kinds))
            if kind in ("string", "object", "boolean", "file"):
                return f"array[{kind}]"
        return "array[any]"
    return "none" if value is None else type(value).__name__


def typed_constant(var_type: str, value: Any) -> Any:
    """A constant of a declared type; JSON text is accepted where the type wants a structure.

    Raises ``ValueError`` with the reference's mismatch text when it does not fit."""
    problem = type_mismatch(var_type, value)
    if problem is None:
        return value
    if isinstance(value, str) and var_type != "string":
        try:
            parsed = json.loads(value)
        except ValueError:
            raise ValueError(problem) from None
        if type_mismatch(var_type, parsed) is None:
            return parsed
    raise ValueError(problem)

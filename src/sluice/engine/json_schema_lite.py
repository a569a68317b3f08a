"""A small JSON Schema (draft 7) subset validator.

Covers the keywords Dify's start-form JSON objects use in practice: ``type``, ``enum``, ``const``,
``properties``, ``required``, ``additionalProperties`` (``false`` or a schema), ``items`` (one schema or
a tuple of schemas), ``minItems``/``maxItems``, ``minLength``/``maxLength`` (code points),
``minimum``/``maximum`` and ``exclusiveMinimum``/``exclusiveMaximum`` (draft-7 numeric form). Boolean
schemas (``true``/``false``) are accepted anywhere a schema is. Other keywords (``$ref``, ``anyOf``,
``pattern``, ``format``…) are ignored, i.e. they never reject.

Messages follow the wording of the ``jsonschema`` package (``'name' is a required property``, ``5 is not
of type 'string'``…); when several keywords fail, the shallowest error wins, as ``best_match`` does.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeGuard

__all__ = ["SchemaValidationError", "find_error", "is_valid", "parse_schema", "validate"]


class SchemaValidationError(ValueError):
    """An instance does not satisfy a schema; ``message`` is the reason (jsonschema wording)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def parse_schema(schema: Any) -> dict[str, Any] | bool | None:
    """Normalise a schema given as a mapping, a boolean, a JSON string or nothing.

    Returns None for "no schema" (None or a blank string). Raises ``ValueError`` when a string is not
    JSON or the result is neither an object nor a boolean.
    """
    if schema is None:
        return None
    if isinstance(schema, str):
        if not schema.strip():
            return None
        try:
            schema = json.loads(schema)
        except json.JSONDecodeError as exc:
            raise ValueError(str(exc)) from exc
    if isinstance(schema, bool):
        return schema
    if isinstance(schema, Mapping):
        return dict(schema)
    raise ValueError(f"{schema!r} is not of type 'object', 'boolean'")


def find_error(instance: Any, schema: Mapping[str, Any] | bool) -> str | None:
    """Return the reason ``instance`` is invalid against ``schema``, or None when it is valid."""
    best: tuple[int, str] | None = None
    for depth, message in _errors(instance, schema, 0):
        if best is None or depth < best[0]:
            best = (depth, message)
    return None if best is None else best[1]


def is_valid(instance: Any, schema: Mapping[str, Any] | bool) -> bool:
    return find_error(instance, schema) is None


def validate(instance: Any, schema: Mapping[str, Any] | bool) -> None:
    """Raise ``SchemaValidationError`` when ``instance`` does not satisfy ``schema``."""
    message = find_error(instance, schema)
    if message is not None:
        raise SchemaValidationError(message)


# --- internals ----------------------------------------------------------------------------------

_TYPE_CHECKS: dict[str, Callable[[Any], bool]] = {
    "null": lambda v: v is None,
    "boolean": lambda v: isinstance(v, bool),
    "string": lambda v: isinstance(v, str),
    "object": lambda v: isinstance(v, Mapping),
    "array": lambda v: isinstance(v, list | tuple),
    "number": lambda v: _is_number(v),
    "integer": lambda v: _is_number(v) and (isinstance(v, int) or float(v).is_integer()),
}


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _json_equal(left: Any, right: Any) -> bool:
    """Equality as JSON sees it: ``True`` is not ``1``, ``1`` is ``1.0``, containers compare deeply."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if isinstance(left, Mapping) and isinstance(right, Mapping):
        return left.keys() == right.keys() and all(_json_equal(left[k], right[k]) for k in left)
    if isinstance(left, list | tuple) and isinstance(right, list | tuple):
        return len(left) == len(right) and all(_json_equal(a, b) for a, b in zip(left, right, strict=True))
    return bool(left == right)


def _errors(instance: Any, schema: Mapping[str, Any] | bool, depth: int) -> Iterator[tuple[int, str]]:
    if schema is True:
        return
    if schema is False:
        yield depth, f"False schema does not allow {instance!r}"
        return
    if not isinstance(schema, Mapping):
        return

    expected_type = schema.get("type")
    if expected_type is not None:
        types = [expected_type] if isinstance(expected_type, str) else list(expected_type)
        if not any(_TYPE_CHECKS.get(t, lambda _v: True)(instance) for t in types):
            yield depth, f"{instance!r} is not of type {', '.join(repr(t) for t in types)}"
            return

    if "enum" in schema and not any(_json_equal(instance, item) for item in schema["enum"]):
        yield depth, f"{instance!r} is not one of {list(schema['enum'])!r}"
    if "const" in schema and not _json_equal(instance, schema["const"]):
        yield depth, f"{schema['const']!r} was expected"

    if isinstance(instance, str):
        yield from _string_errors(instance, schema, depth)
    elif _is_number(instance):
        yield from _number_errors(instance, schema, depth)
    elif isinstance(instance, Mapping):
        yield from _object_errors(instance, schema, depth)
    elif isinstance(instance, list | tuple):
        yield from _array_errors(list(instance), schema, depth)


def _string_errors(instance: str, schema: Mapping[str, Any], depth: int) -> Iterator[tuple[int, str]]:
    min_length = schema.get("minLength")
    if _is_number(min_length) and len(instance) < min_length:
        yield depth, f"{instance!r} is too short"
    max_length = schema.get("maxLength")
    if _is_number(max_length) and len(instance) > max_length:
        yield depth, f"{instance!r} is too long"


def _number_errors(instance: float, schema: Mapping[str, Any], depth: int) -> Iterator[tuple[int, str]]:
    minimum = schema.get("minimum")
    if _is_number(minimum) and instance < minimum:
        yield depth, f"{instance!r} is less than the minimum of {minimum!r}"
    maximum = schema.get("maximum")
    if _is_number(maximum) and instance > maximum:
        yield depth, f"{instance!r} is greater than the maximum of {maximum!r}"
    exclusive_min = schema.get("exclusiveMinimum")
    if _is_number(exclusive_min) and instance <= exclusive_min:
        yield depth, f"{instance!r} is less than or equal to the minimum of {exclusive_min!r}"
    exclusive_max = schema.get("exclusiveMaximum")
    if _is_number(exclusive_max) and instance >= exclusive_max:
        yield depth, f"{instance!r} is greater than or equal to the maximum of {exclusive_max!r}"


def _object_errors(
    instance: Mapping[str, Any], schema: Mapping[str, Any], depth: int
) -> Iterator[tuple[int, str]]:
    for name in schema.get("required") or []:
        if name not in instance:
            yield depth, f"{name!r} is a required property"

    properties = schema.get("properties")
    properties = properties if isinstance(properties, Mapping) else {}
    for name, subschema in properties.items():
        if name in instance:
            yield from _errors(instance[name], subschema, depth + 1)

    additional = schema.get("additionalProperties", True)
    extras = [name for name in instance if name not in properties]
    if additional is False and extras:
        verb = "was" if len(extras) == 1 else "were"
        listed = ", ".join(repr(name) for name in extras)
        yield depth, f"Additional properties are not allowed ({listed} {verb} unexpected)"
    elif isinstance(additional, Mapping):
        for name in extras:
            yield from _errors(instance[name], additional, depth + 1)


def _array_errors(instance: list[Any], schema: Mapping[str, Any], depth: int) -> Iterator[tuple[int, str]]:
    min_items = schema.get("minItems")
    if _is_number(min_items) and len(instance) < min_items:
        yield depth, f"{instance!r} is too short"
    max_items = schema.get("maxItems")
    if _is_number(max_items) and len(instance) > max_items:
        yield depth, f"{instance!r} is too long"

    items = schema.get("items")
    if isinstance(items, Mapping | bool):
        for item in instance:
            yield from _errors(item, items, depth + 1)
    elif isinstance(items, list):
        for item, subschema in zip(instance, items, strict=False):
            yield from _errors(item, subschema, depth + 1)
        additional = schema.get("additionalItems", True)
        if len(instance) > len(items) and additional is not True:
            for item in instance[len(items) :]:
                yield from _errors(item, additional, depth + 1)

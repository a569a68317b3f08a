"""Start-form input validation (`prepare_inputs`, engine.md §3.6, service-api.md §6).

The service calls ``prepare_inputs`` before a run. Variables are checked in declaration order; the first
failure raises ``InputError`` whose message is one of the wire-contract sentences of service-api.md §6.
The rules follow Dify's ``BaseAppGenerator._validate_inputs`` except where the spec tightens them
(booleans are not numbers, unrecognised checkbox values are rejected, ``[]`` is kept for file lists,
NUL characters are stripped at any depth).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sluice.engine import json_schema_lite

__all__ = [
    "InputError",
    "coerce_checkbox",
    "coerce_number",
    "file_allowed",
    "prepare_inputs",
    "strip_nul",
]

TEXT_TYPES = frozenset({"text-input", "paragraph"})
STRING_TYPES = TEXT_TYPES | {"select"}

_TRUE_WORDS = frozenset({"true", "1", "yes", "on"})
_FALSE_WORDS = frozenset({"false", "0", "no", "off"})


class InputError(ValueError):
    """A start input failed validation; ``message`` is the client-facing sentence."""

    def __init__(self, message: str, variable: str) -> None:
        super().__init__(message)
        self.message = message
        self.variable = variable


def prepare_inputs(variables: Sequence[Mapping[str, Any]], raw: Mapping[str, Any] | None) -> dict[str, Any]:
    """Validate and normalise ``raw`` request inputs against the start node's ``data.variables``.

    Returns one entry per declared variable, in declaration order (absent optional variables hold their
    default or None). Undeclared keys and ``sys.*`` keys are dropped. Raises ``InputError``.
    """
    supplied: Mapping[str, Any] = raw or {}
    prepared: dict[str, Any] = {}
    for declaration in variables:
        name = str(declaration.get("variable") or "")
        if not name or name.startswith("sys."):
            continue
        value = _validate(declaration, name, supplied.get(name))
        prepared[name] = strip_nul(value)
    return prepared


def strip_nul(value: Any) -> Any:
    """Remove NUL characters from strings, recursively through lists and dict values."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, Mapping):
        return {key: strip_nul(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [strip_nul(item) for item in value]
    return value


def coerce_number(value: Any) -> int | float | None:
    """Number input rule: int/float as is, numeric strings converted, blank strings → None.

    A string containing ``.`` becomes a float, any other an int (``"1e5"`` is therefore rejected, as in
    Dify). Raises ``ValueError`` for booleans, unparsable strings and other types.
    """
    if isinstance(value, bool):
        raise ValueError("booleans are not numbers")
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        if not value.strip():
            return None
        return float(value) if "." in value else int(value)
    raise ValueError(f"not a number: {value!r}")


def coerce_checkbox(value: Any) -> bool:
    """Checkbox input rule: bools, ``true/false/1/0/yes/no/on/off`` (any case, trimmed), numbers 1/0.

    Raises ``ValueError`` for anything else.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
    elif isinstance(value, int | float) and value in (0, 1):
        return value == 1
    raise ValueError(f"not a boolean: {value!r}")


# --- per-variable validation --------------------------------------------------------------------


def _validate(declaration: Mapping[str, Any], name: str, value: Any) -> Any:
    var_type = str(declaration.get("type") or "")
    required = bool(declaration.get("required"))

    if value is None:
        if required:
            raise InputError(f"{name} is required in input form", name)
        value = declaration.get("default")
        if value is None:
            return None

    if var_type in {"file", "file-list"} and not required and isinstance(value, str) and not value:
        return None

    if var_type in STRING_TYPES:
        return _validate_string(declaration, name, var_type, value)
    if var_type == "number":
        try:
            return coerce_number(value)
        except ValueError:
            raise InputError(f"{name} in input form must be a valid number", name) from None
    if var_type == "checkbox":
        try:
            return coerce_checkbox(value)
        except ValueError:
            raise InputError(f"{name} in input form must be a boolean", name) from None
    if var_type == "json_object":
        return _validate_json_object(declaration, name, value)
    if var_type == "file":
        if not isinstance(value, Mapping):
            raise InputError(f"{name} in input form must be a file", name)
        return dict(value)
    if var_type == "file-list":
        return _validate_file_list(declaration, name, value)
    # external_data_tool (filled by the service) and unknown types: passed through unchecked.
    return value


def _max_length(declaration: Mapping[str, Any]) -> int:
    raw = declaration.get("max_length")
    if isinstance(raw, bool):
        return 0
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    if isinstance(raw, str) and raw.strip().isdigit():
        return int(raw)
    return 0


def _validate_string(declaration: Mapping[str, Any], name: str, var_type: str, value: Any) -> str:
    if not isinstance(value, str):
        raise InputError(f"(type '{var_type}') {name} in input form must be a string", name)
    if var_type == "select":
        options = list(declaration.get("options") or [])
        if value not in options:
            raise InputError(f"{name} in input form must be one of the following: {options}", name)
        return value
    limit = _max_length(declaration)
    if limit > 0 and len(value) > limit:
        raise InputError(f"{name} in input form must be less than {limit} characters", name)
    return value


def _validate_json_object(declaration: Mapping[str, Any], name: str, value: Any) -> Any:
    if not value:
        return value  # falsy values ("", 0, [], {}, false) pass unchecked, as in Dify
    if not isinstance(value, Mapping):
        raise InputError(f"{name} in input form must be a dict", name)
    try:
        schema = json_schema_lite.parse_schema(declaration.get("json_schema"))
    except ValueError as exc:
        raise InputError(f"{name} in input form has an invalid JSON schema: {exc}", name) from None
    if schema is not None:
        reason = json_schema_lite.find_error(value, schema)
        if reason is not None:
            raise InputError(f"{name} in input form does not match the JSON schema: {reason}", name)
    return dict(value)


def _validate_file_list(declaration: Mapping[str, Any], name: str, value: Any) -> list[Any]:
    if not isinstance(value, list) or not all(isinstance(item, Mapping) for item in value):
        raise InputError(f"{name} in input form must be a list of files", name)
    limit = _max_length(declaration)
    if limit > 0 and len(value) > limit:
        raise InputError(f"{name} in input form must be less than {limit} files", name)
    return [dict(item) for item in value]


# --- file inputs (service-api.md §7) -------------------------------------------------------------


def file_allowed(config: Mapping[str, Any], file_type: str, extension: str, transfer_method: str) -> bool:
    """Whether a file fits a variable's (or the ``file_upload`` feature's) allowed types, custom
    extensions and upload methods, as Dify's ``_is_file_valid_with_config`` decides it: the
    declared ``type`` must be allowed; a ``custom`` file needs its extension listed; an empty or
    absent setting allows everything."""
    allowed_types = [str(t) for t in config.get("allowed_file_types") or ()]
    if allowed_types and file_type not in allowed_types:
        return False
    if file_type == "custom" and allowed_types:
        wanted = {_dotted(str(e)) for e in config.get("allowed_file_extensions") or ()}
        if wanted and _dotted(extension) not in wanted:
            return False
    methods = [str(m) for m in config.get("allowed_file_upload_methods") or ()]
    return not methods or transfer_method in methods


def _dotted(extension: str) -> str:
    extension = extension.strip().lower()
    return extension if not extension or extension.startswith(".") else "." + extension

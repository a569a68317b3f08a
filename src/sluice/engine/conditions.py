"""If-else condition evaluation (engine.md §4.2).

Pure functions over plain pool values. Semantics and error sentences follow the reference condition
processor (graphon 0.8.0): a failure raises ``ConditionError`` whose ``str()`` is the node's ``error``.
Where the reference surfaces a Python conversion error (``int("7.0")``, ``json.loads("abc")``) its text
is kept as is, so failed nodes carry the same message.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

FILE_IDENTITY = "__dify__file__"
UNARY_OPERATORS = frozenset({"empty", "not empty", "null", "not null", "exists", "not exists"})
EXISTENCE_OPERATORS = frozenset({"exists", "not exists"})
"""Evaluated without preparing ``value`` and left out of ``inputs`` (as the reference)."""
FILE_OPERATORS = frozenset({"contains", "not contains", "all of"})
"""On an array of files these operators evaluate ``sub_variable_condition`` instead."""
_SAME_NAME_ATTRIBUTES = ("type", "size", "mime_type", "transfer_method", "url", "extension", "related_id")
FILE_ATTRIBUTES: Mapping[str, str] = {**{key: key for key in _SAME_NAME_ATTRIBUTES}, "name": "filename"}
"""Sub-condition ``key`` → file dict key."""

ResolveActual = Callable[[list[str]], Any]
ResolveExpected = Callable[[str], str]


class ConditionError(ValueError):
    """A condition cannot be evaluated; the if-else node fails with ``message`` (no error_type)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class VariableNotFound(ConditionError):
    """The condition's variable is absent from the pool (Q5: fails even for null/exists)."""

    def __init__(self, selector: Sequence[str]) -> None:
        self.selector = list(selector)
        super().__init__(f"Variable {self.selector!r} not found")


# --- value kinds --------------------------------------------------------------------------------


def is_file(value: Any) -> bool:
    return isinstance(value, Mapping) and value.get("dify_model_identity") == FILE_IDENTITY


def is_file_array(value: Any) -> bool:
    """An ``array[file]`` segment: a non-empty list whose items are all files."""
    return isinstance(value, list) and bool(value) and all(is_file(item) for item in value)


def is_bool_array(value: Any) -> bool:
    """An ``array[boolean]`` segment: a non-empty list whose items are all booleans."""
    return isinstance(value, list) and bool(value) and all(isinstance(item, bool) for item in value)


def _typed_empty(value: Any, var_type: Any, item_type: str) -> bool:
    return isinstance(value, list) and not value and var_type == f"array[{item_type}]"


# --- expected-value preparation -----------------------------------------------------------------


def _to_bool(value: Any) -> bool:
    if isinstance(value, int):  # bool included
        return bool(value)
    if isinstance(value, str):
        try:
            loaded = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ConditionError(str(exc)) from None
        if isinstance(loaded, int):
            return bool(loaded)
    raise ConditionError(f"unexpected value: type={type(value)}, value={value}")


def coerce_expected(actual: Any, expected: Any, *, var_type: str | None = None) -> Any:
    """Boolean actual (or array of booleans): the expected value, or each item, becomes a bool.

    Strings are JSON-parsed and must give an int or bool (``"true"``, ``"1"``); anything else raises.
    Other actual values leave ``expected`` untouched. Idempotent. ``var_type`` (the condition's
    ``varType``) types an empty list, whose element type a plain value cannot tell.
    """
    boolean = isinstance(actual, bool) or is_bool_array(actual) or _typed_empty(actual, var_type, "boolean")
    if expected is None or not boolean:
        return expected
    if isinstance(expected, list):
        return [_to_bool(item) for item in expected]
    return _to_bool(expected)


# --- operators ----------------------------------------------------------------------------------


def _contains(value: Any, expected: Any) -> bool:
    if not value:
        return False
    if isinstance(value, str):
        return (expected if isinstance(expected, str) else str(expected)) in value
    if isinstance(value, list):
        return expected in value
    raise ConditionError("Invalid actual value type: string or array")


def _not_contains(value: Any, expected: Any) -> bool:
    if not value:
        return True
    return not _contains(value, expected)


def _affix(method: str) -> Callable[[Any, Any], bool]:
    def check(value: Any, expected: Any) -> bool:
        if not value:
            return False
        if not isinstance(value, str):
            raise ConditionError("Invalid actual value type: string")
        if not isinstance(expected, str):
            raise ConditionError(f"Expected value must be a string for {method}")
        return bool(getattr(value, method)(expected))

    return check


def _is(value: Any, expected: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, str | bool):
        return bool(value == expected)
    raise ConditionError("Invalid actual value type: string or boolean")


def _is_not(value: Any, expected: Any) -> bool:
    if value is None:
        return False
    return not _is(value, expected)


def _in(value: Any, expected: Any) -> bool:
    if not value:
        return False
    if not isinstance(expected, list):
        raise ConditionError("Invalid expected value type: array")
    return value in expected


def _not_in(value: Any, expected: Any) -> bool:
    if not value:
        return True
    return not _in(value, expected)


def _all_of(value: Any, expected: Any) -> bool:
    if isinstance(expected, list) and all(isinstance(item, str) for item in expected):
        searchable = isinstance(value, list | tuple | set | str)  # str items: also substrings of a str
    elif isinstance(expected, list) and all(isinstance(item, bool) for item in expected):
        searchable = isinstance(value, list | tuple | set)
    else:
        raise ConditionError("all of operator expects homogeneous list of strings or booleans")
    if not value or not searchable:
        return False
    return all(item in value for item in expected)


def _equality_expected(value: Any, expected: Any) -> Any:
    if isinstance(value, bool):
        target: type = bool
    elif isinstance(value, int):
        target = int
    elif isinstance(value, float):
        target = float
    else:
        raise ConditionError("Invalid actual value type: number or boolean")
    accepted = (bool, int, str) if target is bool else (int, float, str)
    if not isinstance(expected, accepted):
        raise ConditionError(f"Cannot convert {type(expected)} to {target.__name__}")
    try:
        return target(expected)
    except (ValueError, OverflowError) as exc:
        raise ConditionError(str(exc)) from None


def _equal(value: Any, expected: Any) -> bool:
    if value is None:
        return False
    return bool(value == _equality_expected(value, expected))


def _not_equal(value: Any, expected: Any) -> bool:
    if value is None:
        return False
    return bool(value != _equality_expected(value, expected))


def _numeric_pair(value: int | float, expected: Any) -> tuple[int | float, int | float]:
    if isinstance(expected, str):
        try:
            number = float(expected)
        except ValueError:
            raise ConditionError(f"Cannot convert '{expected}' to number") from None
        if isinstance(value, int):
            return (value, int(number)) if number.is_integer() else (float(value), number)
        return value, number
    if isinstance(expected, float):
        return float(value), expected
    if isinstance(expected, int):
        return value, expected
    raise ConditionError(f"Cannot convert {type(expected)} to number")


def _comparison(compare: Callable[[int | float, int | float], bool]) -> Callable[[Any, Any], bool]:
    def check(value: Any, expected: Any) -> bool:
        if value is None:
            return False
        if not isinstance(value, int | float):
            raise ConditionError("Invalid actual value type: number")
        return compare(*_numeric_pair(value, expected))

    return check


_BINARY: Mapping[str, Callable[[Any, Any], bool]] = {
    "contains": _contains,
    "not contains": _not_contains,
    "start with": _affix("startswith"),
    "end with": _affix("endswith"),
    "is": _is,
    "is not": _is_not,
    "in": _in,
    "not in": _not_in,
    "all of": _all_of,
    "=": _equal,
    "≠": _not_equal,
    ">": _comparison(lambda a, b: a > b),
    "<": _comparison(lambda a, b: a < b),
    "≥": _comparison(lambda a, b: a >= b),
    "≤": _comparison(lambda a, b: a <= b),
}
_UNARY: Mapping[str, Callable[[Any], bool]] = {
    "empty": lambda v: not v,
    "not empty": lambda v: bool(v),
    "null": lambda v: v is None,
    "not null": lambda v: v is not None,
    "exists": lambda v: v is not None,
    "not exists": lambda v: v is None,
}
OPERATORS = frozenset(_BINARY) | frozenset(_UNARY)


def _apply(operator: str, actual: Any, expected: Any) -> bool:
    unary = _UNARY.get(operator)
    if unary is not None:
        return unary(actual)
    binary = _BINARY.get(operator)
    if binary is None:
        raise ConditionError(f"Unsupported operator: {operator}")
    return binary(actual, expected)


def evaluate_condition(actual: Any, operator: str, expected: Any) -> bool:
    """Apply ``operator`` to a present value ``actual`` and an already template-resolved ``expected``.

    Boolean coercion of ``expected`` (``coerce_expected``) is applied for binary operators.
    """
    if operator in UNARY_OPERATORS:
        return _apply(operator, actual, None)
    return _apply(operator, actual, coerce_expected(actual, expected))


def _dotted(extension: Any) -> Any:
    if isinstance(extension, str) and extension and not extension.startswith("."):
        return "." + extension
    return extension


def _file_attribute(file: Mapping[str, Any], key: str) -> Any:
    if key == "url":
        return file.get("url") or file.get("remote_url")
    return file.get(FILE_ATTRIBUTES[key])


def evaluate_file_condition(
    files: Sequence[Mapping[str, Any]], operator: str, sub_condition: Mapping[str, Any] | None
) -> bool:
    """``contains``/``not contains``/``all of`` on an array of files (the operator only routes here).

    Each sub-condition reads ``key`` from every file and applies its own operator per file, combining
    with ``all()`` when that operator contains "not", else ``any()``; sub-condition results combine by
    the sub ``logical_operator``. Sub-condition values are used literally (no templates, no coercion).
    """
    del operator  # as the reference: the outcome depends on the sub-conditions alone
    if not sub_condition:
        raise ConditionError("Sub variable is required")
    results: list[bool] = []
    for sub in sub_condition.get("conditions") or []:
        key = str(sub.get("key"))
        if key not in FILE_ATTRIBUTES:
            raise ConditionError(f"'{key}' is not a valid FileAttribute")
        sub_operator = str(sub.get("comparison_operator") or "")
        expected = sub.get("value")
        values = [_file_attribute(file, key) for file in files]
        if key == "extension":
            if not isinstance(expected, str):
                raise ConditionError("Expected value must be a string when key is FileAttribute.EXTENSION")
            expected = _dotted(expected)
            values = [_dotted(value) for value in values]
        per_file = [_apply(sub_operator, value, expected) for value in values]
        results.append(all(per_file) if "not" in sub_operator else any(per_file))
    return all(results) if sub_condition.get("logical_operator", "and") == "and" else any(results)


# --- cases --------------------------------------------------------------------------------------


def _is_file_condition(actual: Any, condition: Mapping[str, Any]) -> bool:
    """An array[file] variable; an empty list counts when the condition is typed or has sub-conditions."""
    if is_file_array(actual):
        return True
    hinted = condition.get("varType") == "array[file]" or bool(condition.get("sub_variable_condition"))
    return isinstance(actual, list) and not actual and hinted


@dataclass(frozen=True)
class CaseResult:
    result: bool
    results: list[bool]
    """One entry per evaluated condition (evaluation stops at the deciding one)."""
    inputs: list[dict[str, Any]]
    """``{actual_value, expected_value, comparison_operator}`` per evaluated condition, except existence
    operators and file sub-conditions."""


def evaluate_case(
    case: Mapping[str, Any], resolve_actual: ResolveActual, resolve_expected: ResolveExpected
) -> CaseResult:
    """Evaluate one case's conditions in order; ``and`` stops at the first false, ``or`` at the first true.

    ``resolve_actual(selector)`` returns the pool value or raises ``VariableNotFound``;
    ``resolve_expected(text)`` renders ``{{#…#}}`` references in a string ``value`` (text rendering).
    """
    logical_operator = case.get("logical_operator") or "and"
    results: list[bool] = []
    inputs: list[dict[str, Any]] = []
    for condition in case.get("conditions") or []:
        operator = str(condition.get("comparison_operator") or "")
        actual = resolve_actual(list(condition.get("variable_selector") or []))
        var_type = condition.get("varType")
        if operator in FILE_OPERATORS and _is_file_condition(actual, condition):
            result = evaluate_file_condition(actual, operator, condition.get("sub_variable_condition"))
        elif operator in EXISTENCE_OPERATORS:
            result = _apply(operator, actual, None)
        else:
            expected = condition.get("value")
            if isinstance(expected, str):
                expected = resolve_expected(expected)
            expected = coerce_expected(actual, expected, var_type=var_type)
            inputs.append(
                {"actual_value": actual, "expected_value": expected, "comparison_operator": operator}
            )
            result = _apply(operator, actual, expected)
        results.append(result)
        if result == (logical_operator == "or"):
            return CaseResult(result, results, inputs)
    final = all(results) if logical_operator == "and" else any(results)
    return CaseResult(final, results, inputs)


@dataclass(frozen=True)
class IfElseOutcome:
    """What the if-else node reports; on ``error`` the node fails with ``inputs`` empty (as the reference)."""

    result: bool
    selected_case_id: str
    condition_results: list[dict[str, Any]] = field(default_factory=list)
    """``process_data.condition_results``: ``{group, results, final_result}`` per evaluated case."""
    inputs: list[dict[str, Any]] = field(default_factory=list)
    """``inputs.conditions``: the last evaluated case's ``CaseResult.inputs``."""
    error: str | None = None

    @property
    def handle(self) -> str:
        return self.selected_case_id or "false"


def if_else_cases(data: Mapping[str, Any]) -> tuple[list[Mapping[str, Any]], bool]:
    """The node's cases and whether the legacy shape (top-level ``conditions``, one case "true") is used."""
    cases = data.get("cases")
    if cases is not None:
        return list(cases), False
    legacy = {
        "case_id": "true",
        "logical_operator": data.get("logical_operator") or "and",
        "conditions": list(data.get("conditions") or []),
    }
    return [legacy], True


def _pick(mapping: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    return {key: mapping.get(key) for key in keys}


def _dump_case(case: Mapping[str, Any]) -> dict[str, Any]:
    """The case as the reference's ``Case.model_dump()`` shows it in ``condition_results.group``."""
    conditions = []
    for condition in case.get("conditions") or []:
        dumped = _pick(
            condition, "variable_selector", "comparison_operator", "value", "sub_variable_condition"
        )
        sub = dumped["sub_variable_condition"]
        if sub is not None:
            subs = [_pick(s, "key", "comparison_operator", "value") for s in sub.get("conditions") or []]
            dumped["sub_variable_condition"] = {
                "logical_operator": sub.get("logical_operator"),
                "conditions": subs,
            }
        conditions.append(dumped)
    return {**_pick(case, "case_id", "logical_operator"), "conditions": conditions}


def evaluate_if_else(
    data: Mapping[str, Any], resolve_actual: ResolveActual, resolve_expected: ResolveExpected
) -> IfElseOutcome:
    """Evaluate an if-else node's cases in order; the first true case wins, none → ``"false"``.

    ``ConditionError`` (including ``VariableNotFound``) is caught into ``IfElseOutcome.error`` with the
    condition results gathered so far.
    """
    cases, legacy = if_else_cases(data)
    condition_results: list[dict[str, Any]] = []
    inputs: list[dict[str, Any]] = []
    for case in cases:
        try:
            outcome = evaluate_case(case, resolve_actual, resolve_expected)
        except ConditionError as exc:
            return IfElseOutcome(False, "false", condition_results, [], exc.message)
        condition_results.append(
            {
                "group": "default" if legacy else _dump_case(case),
                "results": outcome.results,
                "final_result": outcome.result,
            }
        )
        inputs = outcome.inputs
        if outcome.result:
            case_id = "true" if legacy else str(case.get("case_id") or "")
            return IfElseOutcome(True, case_id, condition_results, inputs)
    return IfElseOutcome(False, "false", condition_results, inputs)

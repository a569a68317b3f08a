"""list-operator (§4.8): filter → extract → order → limit over an array variable."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from sluice.engine.nodes import schema
from sluice.engine.nodes.base import FAILED, Loc, Node, NodeError, NodeResult, Problems, RunContext
from sluice.engine.pool import VariablePool
from sluice.engine.template import render
from sluice.engine.values import ABSENT, segment_type

STRING_KEYS = ("name", "extension", "mime_type", "url", "related_id")
FILE_STRING_FIELDS = {
    "name": "filename",
    "type": "type",
    "extension": "extension",
    "mime_type": "mime_type",
    "transfer_method": "transfer_method",
    "url": "remote_url",
    "related_id": "related_id",
}
SUPPORTED = ("array[string]", "array[number]", "array[boolean]", "array[file]")


class ListOperatorError(ValueError):
    pass


def _file_string(key: str) -> Callable[[Any], str]:
    field = FILE_STRING_FIELDS.get(key)
    if field is None:
        raise ListOperatorError(f"Invalid key: {key}")
    return lambda f: str(f.get(field) or "")


def _string_filter(condition: str, value: Any) -> Callable[[Any], bool]:
    if condition == "empty":
        return lambda x: not x
    if condition == "not empty":
        return bool
    table: dict[str, Callable[[Any], bool]] = {
        "contains": lambda x: value in x,
        "start with": lambda x: x.startswith(value),
        "end with": lambda x: x.endswith(value),
        "is": lambda x: x == value,
        "in": lambda x: x in value,
        "not contains": lambda x: value not in x,
        "is not": lambda x: x != value,
        "not in": lambda x: x not in value,
    }
    if condition not in table:
        raise ListOperatorError(f"Invalid condition: {condition}")
    return table[condition]


def _number_filter(condition: str, value: float) -> Callable[[Any], bool]:
    table: dict[str, Callable[[Any], bool]] = {
        "=": lambda x: x == value,
        "≠": lambda x: x != value,
        "<": lambda x: x < value,
        "≤": lambda x: x <= value,
        ">": lambda x: x > value,
        "≥": lambda x: x >= value,
    }
    if condition not in table:
        raise ListOperatorError(f"Invalid condition: {condition}")
    return table[condition]


def _file_filter(key: str, condition: str, value: Any) -> Callable[[Any], bool]:
    if key in STRING_KEYS and isinstance(value, str):
        extract = _file_string(key)
        check = _string_filter(condition, value)
        return lambda f: check(extract(f))
    if key in ("type", "transfer_method"):
        extract = _file_string(key)
        if condition not in ("in", "not in"):
            raise ListOperatorError(f"Invalid condition: {condition}")
        if condition == "in":
            return lambda f: extract(f) in value
        return lambda f: extract(f) not in value
    if key == "size" and isinstance(value, str):
        check = _number_filter(condition, float(value))
        return lambda f: check(f.get("size"))
    raise ListOperatorError(f"Invalid key: {key}")


class ListOperatorNode(Node):
    type = "list-operator"

    def run_inline(self, pool: VariablePool, ctx: RunContext) -> NodeResult:
        selector = list(self.spec.data.get("variable") or [])
        value = pool.get(selector)
        if value is ABSENT:
            return NodeResult(
                status=FAILED, error=f"Variable not found for selector: {selector}", error_type=None
            )
        if not value:
            return NodeResult(inputs={"variable": []}, process_data={"variable": []}, outputs=_outputs([]))
        kind = segment_type(value)
        if kind not in SUPPORTED:
            return NodeResult(
                status=FAILED,
                error=f"Variable {selector} is not an array type, actual type: {kind}",
                error_type=None,
            )
        inputs = {"variable": value}
        try:
            result = self._operate(kind, list(value), pool)
        except ListOperatorError as exc:
            return NodeResult(
                status=FAILED, inputs=inputs, process_data=dict(inputs), error=str(exc), error_type=None
            )
        except (ValueError, TypeError) as exc:
            raise NodeError(str(exc)) from None
        return NodeResult(inputs=inputs, process_data=dict(inputs), outputs=_outputs(result))

    def _operate(self, kind: str, items: list[Any], pool: VariablePool) -> list[Any]:
        data = self.spec.data
        section = _section
        if section(data, "filter_by").get("enabled"):
            for condition in section(data, "filter_by").get("conditions") or []:
                items = self._filter(kind, items, condition, pool)
        if section(data, "extract_by").get("enabled"):
            serial = int(render(str(section(data, "extract_by").get("serial", "1")), pool))
            if serial < 1:
                raise ValueError(f"Invalid serial index: must be >= 1, got {serial}")
            if serial > len(items):
                raise ListOperatorError(f"Invalid serial index: must be <= {len(items)}, got {serial}")
            items = [items[serial - 1]]
        order = section(data, "order_by")
        if order.get("enabled"):
            reverse = order.get("value") == "desc"
            if kind == "array[file]":
                key = str(order.get("key") or "")
                if key == "size":
                    items = sorted(items, key=lambda f: f.get("size"), reverse=reverse)
                elif key in FILE_STRING_FIELDS:
                    items = sorted(items, key=_file_string(key), reverse=reverse)
                else:
                    raise ListOperatorError(f"Invalid order key: {key}")
            else:
                items = sorted(items, reverse=reverse)
        limit = section(data, "limit")
        if limit.get("enabled"):
            items = items[: int(limit.get("size", -1))]
        return items

    def _filter(
        self, kind: str, items: list[Any], condition: Mapping[str, Any], pool: VariablePool
    ) -> list[Any]:
        operator = str(condition.get("comparison_operator") or "contains")
        value = condition.get("value", "")
        if kind in ("array[string]", "array[number]"):
            if not isinstance(value, str):
                raise ListOperatorError(f"Invalid filter value: {value}")
            text = render(value, pool)
            check = (
                _string_filter(operator, text)
                if kind == "array[string]"
                else _number_filter(operator, float(text))
            )
        elif kind == "array[file]":
            if isinstance(value, bool):
                raise TypeError(f"File filter expects a string value, got {type(value)}")
            if isinstance(value, str):
                value = render(value, pool)
            check = _file_filter(str(condition.get("key") or ""), operator, value)
        else:
            if not isinstance(value, bool):
                raise TypeError(f"Boolean filter expects a boolean value, got {type(value)}")
            if operator not in ("is", "is not"):
                raise ListOperatorError(f"Invalid condition: {operator}")
            check = (lambda x: x == value) if operator == "is" else (lambda x: x != value)
        return [item for item in items if check(item)]

    @classmethod
    def check_data(cls, data: Mapping[str, Any]) -> Problems:
        problems: Problems = []
        schema.selector(data, "variable", problems)
        for key in ("filter_by", "order_by", "limit", "extract_by"):
            section = schema.mapping(data, key, problems)
            schema.boolean(section, "enabled", problems, loc=(key,))
        order = _section(data, "order_by")
        if order.get("enabled"):
            schema.enum(order, "value", ("asc", "desc"), problems, loc=("order_by",), default="asc")
        limit = _section(data, "limit")
        if limit.get("enabled"):
            schema.integer(limit, "size", problems, loc=("limit",), default=-1)
        for i, cond in enumerate(schema.items(_section(data, "filter_by"), "conditions", problems)):
            if not isinstance(cond, Mapping):
                problems.append((("filter_by", "conditions", i), "must be a mapping"))
        return problems

    @classmethod
    def read_selectors(cls, data: Mapping[str, Any]) -> Iterator[tuple[Loc, Any]]:
        yield ("variable",), data.get("variable")


def _section(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    return value if isinstance(value, Mapping) else {}


def _outputs(items: list[Any]) -> dict[str, Any]:
    return {
        "result": items,
        "first_record": items[0] if items else None,
        "last_record": items[-1] if items else None,
    }

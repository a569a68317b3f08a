"""assigner v1 and v2 (§4.7): writes to existing variables, one ``node_variable_updated`` each."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from sluice.engine.nodes import schema
from sluice.engine.nodes.base import FAILED, Loc, Node, NodeError, NodeResult, Problems, RunContext
from sluice.engine.pool import VariablePool
from sluice.engine.values import ABSENT, segment_type, zero_value

NUMERIC = frozenset({"number", "integer", "float"})
SCALAR_INPUT: dict[str, type | tuple[type, ...]] = {"string": str, "boolean": bool, "object": dict}
APPEND_INPUT: dict[str, type | tuple[type, ...]] = {
    "array[any]": (str, float, int, dict),
    "array[string]": str,
    "array[number]": (int, float),
    "array[object]": dict,
    "array[boolean]": bool,
}
NO_VALUE_OPS = frozenset({"clear", "remove-first", "remove-last"})
ARITHMETIC = frozenset({"+=", "-=", "*=", "/="})
OPERATIONS = frozenset(
    {"over-write", "clear", "append", "extend", "set", *ARITHMETIC, "remove-first", "remove-last"}
)
V1_MODES = ("over-write", "append", "clear")


def is_v2(data: Mapping[str, Any]) -> bool:
    return "items" in data or str(data.get("version") or "1") == "2"


def value_type(ctx: RunContext, selector: tuple[str, str], value: Any) -> str:
    return ctx.declared_types.get(selector) or segment_type(value)


def updated(selector: tuple[str, str], value: Any, kind: str) -> dict[str, Any]:
    return {"name": selector[1], "selector": list(selector), "value_type": kind, "new_value": value}


class AssignerNode(Node):
    type = "assigner"

    def run_inline(self, pool: VariablePool, ctx: RunContext) -> NodeResult:
        if is_v2(self.spec.data):
            return self._run_v2(pool, ctx)
        return self._run_v1(pool, ctx)

    # -- v1 -------------------------------------------------------------------------------------

    def _run_v1(self, pool: VariablePool, ctx: RunContext) -> NodeResult:
        data = self.spec.data
        target = tuple(str(s) for s in data.get("assigned_variable_selector") or [])[:2]
        original = pool.get(target)
        if original is ABSENT or len(target) != 2:
            raise NodeError("assigned variable not found")
        selector = (target[0], target[1])
        kind = value_type(ctx, selector, original)
        mode = data.get("write_mode")
        if mode == "clear":
            income = new = zero_value(kind)
        else:
            income = pool.get(data.get("input_variable_selector") or [])
            if income is ABSENT:
                raise NodeError("input value not found")
            if mode == "append":
                if not isinstance(original, list):
                    raise NodeError("append mode requires an array variable")
                new = [*original, income]
            else:
                new = income
        return NodeResult(
            inputs={"value": income},
            process_data={"__updated_variables": [updated(selector, new, kind)]},
            updates=[(selector, new, kind)],
        )

    # -- v2 -------------------------------------------------------------------------------------

    def _run_v2(self, pool: VariablePool, ctx: RunContext) -> NodeResult:
        items = [dict(i) for i in self.spec.data.get("items") or [] if isinstance(i, Mapping)]
        inputs = {"items": items}
        working = pool.child_copy()
        order: list[tuple[str, str]] = []
        try:
            for item in items:
                selector = self._apply_item(item, working, ctx)
                if selector is not None and selector not in order:
                    order.append(selector)
        except NodeError as exc:
            return NodeResult(status=FAILED, inputs=inputs, error=exc.message, error_type=None)
        process_data: dict[str, Any] = {}
        updates: list[tuple[tuple[str, str], Any, str]] = []
        for selector in order:
            value = working.get(selector)
            kind = value_type(ctx, selector, value)
            process_data[selector[1]] = value
            updates.append((selector, value, kind))
        process_data["__updated_variables"] = [updated(s, v, k) for s, v, k in updates]
        return NodeResult(inputs=inputs, process_data=process_data, updates=updates)

    def _apply_item(
        self, item: Mapping[str, Any], working: VariablePool, ctx: RunContext
    ) -> tuple[str, str] | None:
        raw_selector = list(item.get("variable_selector") or [])
        current = working.get(raw_selector) if len(raw_selector) >= 2 else ABSENT
        if current is ABSENT:
            raise NodeError(f"Variable {raw_selector} not found")
        selector = (str(raw_selector[0]), str(raw_selector[1]))
        kind = value_type(ctx, selector, current)
        operation = str(item.get("operation"))
        input_type = str(item.get("input_type"))
        if not _operation_supported(kind, operation):
            raise NodeError(f"Operation {operation} is not supported for type {kind}")
        if input_type == "variable":
            if operation in {"set", *ARITHMETIC}:
                raise NodeError(f"Input type variable is not supported for operation {operation}")
        elif input_type == "constant" and not _constant_supported(kind, operation):
            raise NodeError(f"Input type constant is not supported for operation {operation}")
        value = item.get("value")
        if input_type == "variable" and operation not in NO_VALUE_OPS and value is not None:
            resolved = working.get(value) if isinstance(value, list) else ABSENT
            if resolved is ABSENT:
                raise NodeError(f"Variable {value} not found")
            if resolved is None:
                return None  # a none input skips its item
            value = resolved
        if operation == "set" and kind == "object" and isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise NodeError(f"Invalid input value {value}") from None
        if not _input_valid(kind, operation, value):
            raise NodeError(f"Invalid input value {value}")
        working.set(selector[0], selector[1], _operate(kind, operation, current, value))
        return selector

    # -- schema ---------------------------------------------------------------------------------

    @classmethod
    def check_data(cls, data: Mapping[str, Any]) -> Problems:
        problems: Problems = []
        if not is_v2(data):
            schema.selector(data, "assigned_variable_selector", problems, exact=True)
            mode = schema.enum(data, "write_mode", V1_MODES, problems)
            if mode != "clear":
                schema.selector(data, "input_variable_selector", problems)
            return problems
        for i, item in enumerate(schema.items(data, "items", problems)):
            loc: Loc = ("items", i)
            if not isinstance(item, Mapping):
                problems.append((loc, "must be a mapping"))
                continue
            schema.selector(item, "variable_selector", problems, loc=loc, exact=True)
            schema.enum(item, "operation", OPERATIONS, problems, loc=loc)
            kind = schema.enum(item, "input_type", ("variable", "constant"), problems, loc=loc)
            if (
                kind == "variable"
                and item.get("operation") not in NO_VALUE_OPS
                and item.get("value") is not None
            ):
                schema.selector(item, "value", problems, loc=loc)
        return problems

    @classmethod
    def read_selectors(cls, data: Mapping[str, Any]) -> Iterator[tuple[Loc, Any]]:
        if not is_v2(data):
            yield ("assigned_variable_selector",), data.get("assigned_variable_selector")
            if data.get("write_mode") != "clear":
                yield ("input_variable_selector",), data.get("input_variable_selector")
            return
        for i, item in enumerate(data.get("items") or []):
            if not isinstance(item, Mapping):
                continue
            yield ("items", i, "variable_selector"), item.get("variable_selector")
            if item.get("input_type") == "variable" and item.get("operation") not in NO_VALUE_OPS:
                if item.get("value") is not None:
                    yield ("items", i, "value"), item.get("value")

    @classmethod
    def write_selectors(cls, data: Mapping[str, Any]) -> Iterator[tuple[Loc, Any]]:
        if not is_v2(data):
            yield ("assigned_variable_selector",), data.get("assigned_variable_selector")
            return
        for i, item in enumerate(data.get("items") or []):
            if isinstance(item, Mapping):
                yield ("items", i, "variable_selector"), item.get("variable_selector")


def _operation_supported(kind: str, operation: str) -> bool:
    if operation in ("over-write", "clear"):
        return True
    if operation == "set":
        return kind in {"object", "string", "boolean", *NUMERIC}
    if operation in ARITHMETIC:
        return kind in NUMERIC
    return kind.startswith("array")


def _constant_supported(kind: str, operation: str) -> bool:
    if kind in ("string", "object", "boolean"):
        return operation in ("over-write", "set")
    if kind in NUMERIC:
        return operation in {"over-write", "set", *ARITHMETIC}
    return False


def _input_valid(kind: str, operation: str, value: Any) -> bool:
    if operation in NO_VALUE_OPS:
        return True
    if kind in NUMERIC:
        return isinstance(value, int | float) and not (operation == "/=" and value == 0)
    scalar = SCALAR_INPUT.get(kind)
    if scalar is not None and isinstance(value, scalar):
        return True
    item_type = APPEND_INPUT.get(kind)
    if item_type is None:
        return False
    if operation == "append":
        return isinstance(value, item_type)
    if operation in ("extend", "over-write"):
        return isinstance(value, list) and all(isinstance(v, item_type) for v in value)
    return False


def _operate(kind: str, operation: str, current: Any, value: Any) -> Any:
    if operation in ("over-write", "set"):
        return value
    if operation == "clear":
        return zero_value(kind)
    if operation == "append":
        return [*current, value]
    if operation in ("extend", "+="):
        return current + value
    if operation == "-=":
        return current - value
    if operation == "*=":
        return current * value
    if operation == "/=":
        return current / value
    if operation == "remove-first":
        return current[1:] if current else current
    return current[:-1] if current else current

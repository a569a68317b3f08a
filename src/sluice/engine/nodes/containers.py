"""iteration and loop (§4.9, §4.10): their data; the scheduler's ``containers`` module runs them.
Also the hidden frame roots ``iteration-start``/``loop-start`` and ``loop-end``."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from sluice.engine.nodes import schema
from sluice.engine.nodes.base import Loc, Node, NodeError, NodeResult, Problems, RunContext
from sluice.engine.pool import VariablePool
from sluice.engine.values import ABSENT, render_text

ERROR_MODES = ("terminated", "continue-on-error", "remove-abnormal-output")
LOOP_MAX_COUNT = 100


class IterationNode(Node):
    type = "iteration"
    inline = False

    def __init__(self, spec: Any) -> None:
        super().__init__(spec)
        data = spec.data
        self.start_node_id = str(data.get("start_node_id") or "")
        self.iterator_selector = list(data.get("iterator_selector") or [])
        self.output_selector = list(data.get("output_selector") or [])
        self.is_parallel = bool(data.get("is_parallel", False))
        self.parallel_nums = int(data.get("parallel_nums") or 10)
        self.error_handle_mode = str(data.get("error_handle_mode") or "terminated")
        self.flatten_output = bool(data.get("flatten_output", True))

    def iterator(self, pool: VariablePool) -> list[Any]:
        value = pool.get(self.iterator_selector)
        if value is ABSENT:
            raise NodeError(f"iterator variable {self.iterator_selector} not found")
        if value is None:
            return []
        if not isinstance(value, list):
            raise NodeError(f"invalid iterator value: {render_text(value)}, please provide a list.")
        return list(value)

    @classmethod
    def check_data(cls, data: Mapping[str, Any]) -> Problems:
        problems: Problems = []
        schema.string(data, "start_node_id", problems)
        schema.selector(data, "iterator_selector", problems)
        schema.selector(data, "output_selector", problems, required=False)
        schema.boolean(data, "is_parallel", problems)
        schema.boolean(data, "flatten_output", problems)
        schema.integer(data, "parallel_nums", problems, default=10, minimum=1)
        schema.enum(data, "error_handle_mode", ERROR_MODES, problems, default="terminated")
        return problems

    @classmethod
    def read_selectors(cls, data: Mapping[str, Any]) -> Iterator[tuple[Loc, Any]]:
        yield ("iterator_selector",), data.get("iterator_selector")
        if data.get("output_selector"):
            yield ("output_selector",), data.get("output_selector")


class LoopNode(Node):
    type = "loop"
    inline = False

    def __init__(self, spec: Any) -> None:
        super().__init__(spec)
        data = spec.data
        self.start_node_id = str(data.get("start_node_id") or "")
        self.loop_count = int(data.get("loop_count") or 1)
        self.break_conditions = list(data.get("break_conditions") or [])
        self.logical_operator = str(data.get("logical_operator") or "and")
        self.loop_variables = [v for v in data.get("loop_variables") or [] if isinstance(v, Mapping)]

    def initial_values(self, pool: VariablePool) -> dict[str, Any]:
        """Loop variables' first values: constants (JSON text accepted) or parent variables."""
        values: dict[str, Any] = {}
        for variable in self.loop_variables:
            label = str(variable.get("label"))
            raw = variable.get("value")
            if variable.get("value_type") == "variable":
                if not isinstance(raw, list):
                    raise NodeError(f"Invalid value for loop variable {label}")
                value = pool.get(raw)
                if value is ABSENT:
                    raise NodeError(f"Invalid value for loop variable {label}")
            else:
                try:
                    value = schema.typed_constant(str(variable.get("var_type")), raw)
                except ValueError as exc:
                    raise NodeError(str(exc)) from None
            values[label] = value
        return values

    @classmethod
    def check_data(cls, data: Mapping[str, Any]) -> Problems:
        problems: Problems = []
        schema.string(data, "start_node_id", problems)
        schema.integer(data, "loop_count", problems, minimum=1, maximum=LOOP_MAX_COUNT)
        schema.enum(data, "logical_operator", ("and", "or"), problems, default="and")
        for i, cond in enumerate(schema.items(data, "break_conditions", problems)):
            if not isinstance(cond, Mapping):
                problems.append((("break_conditions", i), "must be a mapping"))
        labels: set[str] = set()
        for i, var in enumerate(schema.items(data, "loop_variables", problems)):
            loc: Loc = ("loop_variables", i)
            if not isinstance(var, Mapping):
                problems.append((loc, "must be a mapping"))
                continue
            label = schema.string(var, "label", problems, loc=loc)
            if isinstance(label, str):
                if label in labels:
                    problems.append(((*loc, "label"), f"duplicate loop variable {label!r}"))
                labels.add(label)
            schema.enum(var, "var_type", schema.VALUE_TYPES, problems, loc=loc)
            kind = schema.enum(var, "value_type", ("variable", "constant"), problems, loc=loc)
            if kind == "variable":
                schema.selector(var, "value", problems, loc=loc)
            elif kind == "constant" and var.get("var_type") in schema.VALUE_TYPES:
                try:
                    schema.typed_constant(str(var.get("var_type")), var.get("value"))
                except ValueError as exc:
                    problems.append(((*loc, "value"), str(exc)))
        return problems

    @classmethod
    def read_selectors(cls, data: Mapping[str, Any]) -> Iterator[tuple[Loc, Any]]:
        for i, var in enumerate(data.get("loop_variables") or []):
            if isinstance(var, Mapping) and var.get("value_type") == "variable":
                yield ("loop_variables", i, "value"), var.get("value")
        for i, cond in enumerate(data.get("break_conditions") or []):
            if isinstance(cond, Mapping):
                yield ("break_conditions", i, "variable_selector"), cond.get("variable_selector")


class _FrameRoot(Node):
    """Hidden: no node events, only its edge events (§5.5)."""

    def run_inline(self, pool: VariablePool, ctx: RunContext) -> NodeResult:
        return NodeResult()


class IterationStartNode(_FrameRoot):
    type = "iteration-start"


class LoopStartNode(_FrameRoot):
    type = "loop-start"


class LoopEndNode(Node):
    """Completing ends its loop after the current round."""

    type = "loop-end"

    def run_inline(self, pool: VariablePool, ctx: RunContext) -> NodeResult:
        return NodeResult()

    @classmethod
    def handles(cls, data: Mapping[str, Any]) -> set[str] | None:
        return set()

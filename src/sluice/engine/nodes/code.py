"""code (§4.3): inputs resolved at start, the program run by the ``CodeExecutor`` port, the
result checked against the declared outputs."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from sluice.engine.nodes import schema
from sluice.engine.nodes.base import FAILED, Loc, Node, NodeResult, Problems, RunContext
from sluice.engine.nodes.code_outputs import (
    CodeNodeError,
    DepthLimitError,
    Limits,
    OutputValidationError,
    OutputValidator,
    convert_scientific,
)
from sluice.engine.pool import VariablePool
from sluice.engine.ports import CodeExecutionError
from sluice.engine.values import ABSENT, to_jsonable

LANGUAGES = ("python3", "javascript")
OUTPUT_TYPES = schema.VALUE_TYPES


class CodeNode(Node):
    type = "code"
    inline = False

    def prepare(self, pool: VariablePool, ctx: RunContext) -> dict[str, Any]:
        inputs: dict[str, Any] = {}
        for item in self.spec.data.get("variables") or []:
            if not isinstance(item, Mapping):
                continue
            value = pool.get(item.get("value_selector") or [])
            if value is ABSENT or (isinstance(value, list) and not value and _declares_files(item)):
                value = None
            inputs[str(item.get("variable", ""))] = to_jsonable(value, mask=False)
        return inputs

    async def run(self, prepared: dict[str, Any], ctx: RunContext) -> NodeResult:
        executor = ctx.ports.code
        if executor is None:
            return NodeResult.failure(
                "Code execution is not configured", "ServiceNotConfiguredError", inputs=prepared
            )
        data = self.spec.data
        settings = ctx.settings
        limits = {
            "cpu_time_s": getattr(settings, "code_cpu_time_s", 10),
            "wall_time_s": getattr(settings, "code_wall_time_s", 15),
            "memory_bytes": getattr(settings, "code_memory_bytes", 256 * 1024 * 1024),
            "stdout_bytes": getattr(settings, "code_stdout_bytes", 1024 * 1024),
            "enable_network": getattr(settings, "code_enable_network", False),
        }
        language = str(data.get("code_language"))
        try:
            result = await executor.run(language, str(data.get("code") or ""), dict(prepared), limits)
        except CodeExecutionError as exc:
            return NodeResult.failure(str(exc), "CodeExecutionError", inputs=prepared)
        if not isinstance(result, dict):
            return NodeResult.failure(
                f"Result must be a dict, got {type(result).__name__}", "CodeExecutionError", inputs=prepared
            )
        validator = OutputValidator(Limits.from_settings(settings))
        outputs_schema = data.get("outputs")
        try:
            outputs = validator.validate(
                convert_scientific(result), outputs_schema if isinstance(outputs_schema, Mapping) else None
            )
        except (OutputValidationError, CodeNodeError, DepthLimitError) as exc:
            return NodeResult(status=FAILED, inputs=prepared, error=str(exc), error_type=type(exc).__name__)
        return NodeResult(inputs=prepared, outputs=outputs)

    @classmethod
    def check_data(cls, data: Mapping[str, Any]) -> Problems:
        problems: Problems = []
        list(schema.named_variables(data, problems))
        schema.enum(data, "code_language", LANGUAGES, problems)
        schema.string(data, "code", problems)
        outputs = schema.mapping(data, "outputs", problems)
        _check_outputs(outputs, ("outputs",), problems)
        return problems

    @classmethod
    def read_selectors(cls, data: Mapping[str, Any]) -> Iterator[tuple[Loc, Any]]:
        return schema.named_variables(data, [])


def _declares_files(item: Mapping[str, Any]) -> bool:
    return str(item.get("value_type") or "") == "array[file]"


def _check_outputs(outputs: Mapping[str, Any], loc: Loc, problems: Problems) -> None:
    for name, config in outputs.items():
        here = (*loc, str(name))
        if not isinstance(config, Mapping):
            problems.append((here, "must be a mapping"))
            continue
        kind = schema.enum(config, "type", OUTPUT_TYPES, problems, loc=here)
        children = config.get("children")
        if children is not None:
            if not isinstance(children, Mapping):
                problems.append(((*here, "children"), "must be a mapping"))
            elif kind in ("object", "array[object]"):
                _check_outputs(children, (*here, "children"), problems)

"""template-transform (§4.4) and variable-aggregator / legacy variable-assigner (§4.6)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from sluice.engine.nodes import schema
from sluice.engine.nodes.base import FAILED, Loc, Node, NodeResult, Problems, RunContext
from sluice.engine.pool import VariablePool
from sluice.engine.template import ThreadedJinjaRenderer
from sluice.engine.values import ABSENT, to_jsonable

MAX_OUTPUT_CHARS = 400_000
_DEFAULT_RENDERER = ThreadedJinjaRenderer()


def named_variables(data: Mapping[str, Any], pool: VariablePool) -> dict[str, Any]:
    """``variables: [{variable, value_selector}]`` resolved to plain values (absent → None)."""
    values: dict[str, Any] = {}
    for item in data.get("variables") or []:
        if not isinstance(item, Mapping):
            continue
        selector = item.get("value_selector") or []
        value = pool.get(selector)
        values[str(item.get("variable", ""))] = None if value is ABSENT else to_jsonable(value, mask=False)
    return values


class TemplateTransformNode(Node):
    type = "template-transform"
    inline = False

    def prepare(self, pool: VariablePool, ctx: RunContext) -> dict[str, Any]:
        return named_variables(self.spec.data, pool)

    async def run(self, prepared: dict[str, Any], ctx: RunContext) -> NodeResult:
        template = str(self.spec.data.get("template") or "")
        timeout = float(getattr(ctx.settings, "template_timeout_s", 10))
        renderer = ctx.ports.templates or _DEFAULT_RENDERER
        try:
            text = await renderer.render(template, prepared, timeout)
        except TimeoutError:
            return NodeResult(status=FAILED, inputs=prepared, error="Template rendering timed out")
        except Exception as exc:  # a template error is the node's failure, without an error_type
            return NodeResult(status=FAILED, inputs=prepared, error=str(exc))
        if len(text) > MAX_OUTPUT_CHARS:
            return NodeResult(
                status=FAILED, inputs=prepared, error=f"Output length exceeds {MAX_OUTPUT_CHARS} characters"
            )
        return NodeResult(inputs=prepared, outputs={"output": text})

    @classmethod
    def check_data(cls, data: Mapping[str, Any]) -> Problems:
        problems: Problems = []
        list(schema.named_variables(data, problems))
        schema.string(data, "template", problems)
        return problems

    @classmethod
    def read_selectors(cls, data: Mapping[str, Any]) -> Iterator[tuple[Loc, Any]]:
        return schema.named_variables(data, [])


def _first_present(selectors: Any, pool: VariablePool) -> Any:
    for selector in selectors or []:
        if isinstance(selector, list | tuple):
            value = pool.get(selector)
            if value is not ABSENT:
                return value
    return ABSENT


class VariableAggregatorNode(Node):
    type = "variable-aggregator"

    def run_inline(self, pool: VariablePool, ctx: RunContext) -> NodeResult:
        data = self.spec.data
        advanced = data.get("advanced_settings") or {}
        outputs: dict[str, Any] = {}
        if isinstance(advanced, Mapping) and advanced.get("group_enabled"):
            for group in advanced.get("groups") or []:
                if not isinstance(group, Mapping):
                    continue
                value = _first_present(group.get("variables"), pool)
                if value is not ABSENT:
                    outputs[str(group.get("group_name", ""))] = {"output": value}
        else:
            value = _first_present(data.get("variables"), pool)
            if value is not ABSENT:
                outputs["output"] = value
        return NodeResult(outputs=outputs)

    @classmethod
    def check_data(cls, data: Mapping[str, Any]) -> Problems:
        problems: Problems = []
        schema.items(data, "variables", problems)
        advanced = schema.mapping(data, "advanced_settings", problems)
        for i, group in enumerate(schema.items(advanced, "groups", problems) if advanced else []):
            if not isinstance(group, Mapping):
                problems.append((("advanced_settings", "groups", i), "must be a mapping"))
            elif not isinstance(group.get("group_name"), str):
                problems.append((("advanced_settings", "groups", i, "group_name"), "must be a string"))
        return problems

    @classmethod
    def read_selectors(cls, data: Mapping[str, Any]) -> Iterator[tuple[Loc, Any]]:
        for i, selector in enumerate(data.get("variables") or []):
            yield ("variables", i), selector
        advanced = data.get("advanced_settings")
        if isinstance(advanced, Mapping) and advanced.get("group_enabled"):
            for g, group in enumerate(advanced.get("groups") or []):
                if isinstance(group, Mapping):
                    for i, selector in enumerate(group.get("variables") or []):
                        yield ("advanced_settings", "groups", g, "variables", i), selector


class LegacyVariableAssignerNode(VariableAggregatorNode):
    type = "variable-assigner"

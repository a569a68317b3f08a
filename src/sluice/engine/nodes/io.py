"""start, end and answer (§4.1)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from sluice.engine import json_schema_lite
from sluice.engine.nodes import schema
from sluice.engine.nodes.base import Loc, Node, NodeError, NodeResult, Problems, RunContext
from sluice.engine.pool import VariablePool
from sluice.engine.template import parse, render, selectors
from sluice.engine.values import ABSENT, is_file

StreamTemplate = list[tuple[str, tuple[str, ...] | None]]


class StartNode(Node):
    type = "start"

    def run_inline(self, pool: VariablePool, ctx: RunContext) -> NodeResult:
        own = dict(pool.namespace(self.spec.id))
        self._check_json_objects(own)
        outputs: dict[str, Any] = {}
        for namespace in ("sys", "env", "conversation"):
            for name, value in pool.namespace(namespace).items():
                outputs[f"{namespace}.{name}"] = value
        outputs.update(own)
        return NodeResult(inputs=own, outputs=outputs)

    def _check_json_objects(self, own: dict[str, Any]) -> None:
        for variable in self.spec.data.get("variables") or []:
            if not isinstance(variable, Mapping) or variable.get("type") != "json_object":
                continue
            key = str(variable.get("variable"))
            value = own.get(key)
            if value is None and variable.get("required"):
                raise NodeError(f"{key} is required in input form")
            if not value:
                continue
            if not isinstance(value, dict):
                raise NodeError(f"JSON object for '{key}' must be an object")
            try:
                parsed = json_schema_lite.parse_schema(variable.get("json_schema"))
            except ValueError:
                parsed = None
            if parsed is not None:
                reason = json_schema_lite.find_error(value, parsed)
                if reason is not None:
                    raise NodeError(f"JSON object for '{key}' does not match schema: {reason}")

    @classmethod
    def check_data(cls, data: Mapping[str, Any]) -> Problems:
        problems: Problems = []
        names: set[str] = set()
        for i, variable in enumerate(schema.items(data, "variables", problems)):
            if not isinstance(variable, Mapping):
                problems.append((("variables", i), "must be a mapping"))
                continue
            name = variable.get("variable")
            if not isinstance(name, str) or not name:
                problems.append((("variables", i, "variable"), "must be a non-empty string"))
            elif name in names:
                problems.append((("variables", i, "variable"), f"duplicate variable {name!r}"))
            else:
                names.add(name)
        return problems


def _selector(raw: Any) -> tuple[str, ...] | None:
    if isinstance(raw, list | tuple) and len(raw) >= 2 and all(isinstance(s, str) for s in raw):
        return tuple(raw)
    return None


class EndNode(Node):
    type = "end"

    def __init__(self, spec: Any) -> None:
        super().__init__(spec)
        items = spec.data.get("outputs") or []
        self._outputs = [
            (str(item.get("variable", "")), _selector(item.get("value_selector")))
            for item in items
            if isinstance(item, Mapping)
        ]

    def run_inline(self, pool: VariablePool, ctx: RunContext) -> NodeResult:
        values: dict[str, Any] = {}
        for name, selector in self._outputs:
            value = pool.get(selector) if selector else ABSENT
            values[name] = None if value is ABSENT else value
        return NodeResult(inputs=dict(values), outputs=values)

    def stream_template(self) -> StreamTemplate:
        template: StreamTemplate = []
        for i, (_name, selector) in enumerate(self._outputs):
            if i:
                template.append(("\n", None))
            if selector:
                template.append(("", selector))
        return template

    @classmethod
    def check_data(cls, data: Mapping[str, Any]) -> Problems:
        problems: Problems = []
        for i, item in enumerate(schema.items(data, "outputs", problems)):
            if not isinstance(item, Mapping):
                problems.append((("outputs", i), "must be a mapping"))
            elif not isinstance(item.get("variable"), str):
                problems.append((("outputs", i, "variable"), "must be a string"))
        return problems

    @classmethod
    def read_selectors(cls, data: Mapping[str, Any]) -> Iterator[tuple[Loc, Any]]:
        for i, item in enumerate(data.get("outputs") or []):
            if isinstance(item, Mapping):
                yield ("outputs", i, "value_selector"), item.get("value_selector")


class AnswerNode(Node):
    type = "answer"

    def _template(self) -> str:
        return str(self.spec.data.get("answer") or "")

    def run_inline(self, pool: VariablePool, ctx: RunContext) -> NodeResult:
        text = render(self._template(), pool, markdown=True)
        files: list[Any] = []
        for part in parse(self._template()):
            if part.selector is None:
                continue
            value = pool.get(part.selector)
            if is_file(value):
                files.append(value)
            elif isinstance(value, list):
                files.extend(v for v in value if is_file(v))
        return NodeResult(outputs={"answer": text, "files": files})

    def stream_template(self) -> StreamTemplate:
        return [(part.text, part.selector) for part in parse(self._template())]

    @classmethod
    def check_data(cls, data: Mapping[str, Any]) -> Problems:
        problems: Problems = []
        schema.string(data, "answer", problems)
        return problems

    @classmethod
    def read_selectors(cls, data: Mapping[str, Any]) -> Iterator[tuple[Loc, Any]]:
        for selector in selectors(str(data.get("answer") or "")):
            yield ("answer",), list(selector)

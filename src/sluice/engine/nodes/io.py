"""start, end and answer (§4.1)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sluice.engine.nodes.base import Node, NodeResult, RunContext
from sluice.engine.pool import VariablePool
from sluice.engine.template import parse, render
from sluice.engine.values import ABSENT, is_file

StreamTemplate = list[tuple[str, tuple[str, ...] | None]]


class StartNode(Node):
    type = "start"

    def run_inline(self, pool: VariablePool, ctx: RunContext) -> NodeResult:
        own = dict(pool.namespace(self.spec.id))
        outputs: dict[str, Any] = dict(own)
        for namespace in ("sys", "env", "conversation"):
            for name, value in pool.namespace(namespace).items():
                outputs[f"{namespace}.{name}"] = value
        return NodeResult(inputs=own, outputs=outputs)


def _selector(raw: Any) -> tuple[str, ...] | None:
    if isinstance(raw, list | tuple) and len(raw) >= 2 and all(isinstance(s, str) for s in raw):
        return tuple(raw)
    return None


class EndNode(Node):
    type = "end"

    def _outputs(self) -> list[tuple[str, tuple[str, ...] | None]]:
        items = self.spec.data.get("outputs") or []
        return [
            (str(item.get("variable", "")), _selector(item.get("value_selector")))
            for item in items
            if isinstance(item, Mapping)
        ]

    def run_inline(self, pool: VariablePool, ctx: RunContext) -> NodeResult:
        values: dict[str, Any] = {}
        for name, selector in self._outputs():
            value = pool.get(selector) if selector else ABSENT
            values[name] = None if value is ABSENT else value
        return NodeResult(inputs=dict(values), outputs=values)

    def stream_template(self) -> StreamTemplate:
        template: StreamTemplate = []
        for i, (_name, selector) in enumerate(self._outputs()):
            if i:
                template.append(("\n", None))
            if selector:
                template.append(("", selector))
        return template


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

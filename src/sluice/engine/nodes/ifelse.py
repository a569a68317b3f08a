"""if-else (§4.2): cases in order, the first true one picks the edge handle."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from sluice.engine.conditions import VariableNotFound, evaluate_if_else
from sluice.engine.nodes import schema
from sluice.engine.nodes.base import FAILED, Loc, Node, NodeResult, Problems, RunContext
from sluice.engine.pool import VariablePool
from sluice.engine.template import resolver
from sluice.engine.values import ABSENT


class IfElseNode(Node):
    type = "if-else"

    def run_inline(self, pool: VariablePool, ctx: RunContext) -> NodeResult:
        def actual(selector: list[str]) -> Any:
            value = pool.get(selector)
            if value is ABSENT:
                raise VariableNotFound(selector)
            return value

        outcome = evaluate_if_else(self.spec.data, actual, resolver(pool))
        inputs = {"conditions": outcome.inputs}
        process_data = {"condition_results": outcome.condition_results}
        if outcome.error is not None:  # if-else failures carry no error_type
            return NodeResult(
                status=FAILED, inputs=inputs, process_data=process_data, error=outcome.error, error_type=None
            )
        return NodeResult(
            inputs=inputs,
            process_data=process_data,
            outputs={"result": outcome.result, "selected_case_id": outcome.selected_case_id},
            edge_source_handle=outcome.handle,
        )

    @classmethod
    def check_data(cls, data: Mapping[str, Any]) -> Problems:
        problems: Problems = []
        cases = data.get("cases")
        if cases is None:
            schema.items(data, "conditions", problems)
            return problems
        ids: set[str] = set()
        for i, case in enumerate(schema.items(data, "cases", problems)):
            if not isinstance(case, Mapping):
                problems.append((("cases", i), "must be a mapping"))
                continue
            case_id = case.get("case_id")
            if not isinstance(case_id, str) or not case_id:
                problems.append((("cases", i, "case_id"), "must be a non-empty string"))
            elif case_id in ids:
                problems.append((("cases", i, "case_id"), f"duplicate case id {case_id!r}"))
            else:
                ids.add(case_id)
            schema.enum(case, "logical_operator", ("and", "or"), problems, loc=("cases", i), default="and")
            schema.items(case, "conditions", problems)
        return problems

    @classmethod
    def read_selectors(cls, data: Mapping[str, Any]) -> Iterator[tuple[Loc, Any]]:
        cases = data.get("cases")
        if not isinstance(cases, list):
            for i, cond in enumerate(data.get("conditions") or []):
                if isinstance(cond, Mapping):
                    yield ("conditions", i, "variable_selector"), cond.get("variable_selector")
            return
        for c, case in enumerate(cases):
            conditions = case.get("conditions") or [] if isinstance(case, Mapping) else []
            for i, cond in enumerate(conditions):
                if isinstance(cond, Mapping):
                    yield ("cases", c, "conditions", i, "variable_selector"), cond.get("variable_selector")

    @classmethod
    def handles(cls, data: Mapping[str, Any]) -> set[str] | None:
        cases = data.get("cases")
        if not isinstance(cases, list):
            return {"true", "false"}
        return {str(c.get("case_id")) for c in cases if isinstance(c, Mapping)} | {"false"}

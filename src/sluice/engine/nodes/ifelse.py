"""if-else (§4.2): cases in order, the first true one picks the edge handle."""

from __future__ import annotations

from typing import Any

from sluice.engine.conditions import VariableNotFound, evaluate_if_else, if_else_cases
from sluice.engine.nodes.base import FAILED, Node, NodeResult, RunContext
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

    def handles(self) -> list[str]:
        cases, _ = if_else_cases(self.spec.data)
        return [str(c.get("case_id")) for c in cases] + ["false"]

"""if-else (§4.2): cases in order, the first true one picks the edge handle."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sluice.engine.conditions import ConditionError, VariableNotFound, evaluate_case
from sluice.engine.nodes.base import FAILED, Node, NodeResult, RunContext
from sluice.engine.pool import VariablePool
from sluice.engine.template import resolver
from sluice.engine.values import ABSENT


class IfElseNode(Node):
    type = "if-else"

    def cases(self) -> list[Mapping[str, Any]]:
        data = self.spec.data
        cases = data.get("cases")
        if isinstance(cases, list):
            return [c for c in cases if isinstance(c, Mapping)]
        return [
            {
                "case_id": "true",
                "logical_operator": data.get("logical_operator", "and"),
                "conditions": data.get("conditions") or [],
            }
        ]

    def run_inline(self, pool: VariablePool, ctx: RunContext) -> NodeResult:
        def actual(selector: list[str]) -> Any:
            value = pool.get(selector)
            if value is ABSENT:
                raise VariableNotFound(selector)
            return value

        expected = resolver(pool)
        results: list[dict[str, Any]] = []
        inputs: list[dict[str, Any]] = []
        try:
            for case in self.cases():
                outcome = evaluate_case(case, actual, expected)
                inputs = outcome.inputs
                results.append(
                    {"group": dict(case), "results": outcome.results, "final_result": outcome.result}
                )
                if outcome.result:
                    case_id = str(case.get("case_id"))
                    return NodeResult(
                        inputs={"conditions": inputs},
                        process_data={"condition_results": results},
                        outputs={"result": True, "selected_case_id": case_id},
                        edge_source_handle=case_id,
                    )
        except (ConditionError, VariableNotFound) as exc:
            return NodeResult(
                status=FAILED,
                inputs={"conditions": inputs},
                process_data={"condition_results": results},
                error=str(exc),
                error_type=None,
            )
        return NodeResult(
            inputs={"conditions": inputs},
            process_data={"condition_results": results},
            outputs={"result": False, "selected_case_id": "false"},
            edge_source_handle="false",
        )

    def handles(self) -> list[str]:
        return [str(c.get("case_id")) for c in self.cases()] + ["false"]

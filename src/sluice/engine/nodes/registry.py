"""Node types by name: those this build runs, and those it knows but cannot run (§4, §4.14)."""

from __future__ import annotations

from sluice.engine.nodes.base import Node, NodeResult, RunContext
from sluice.engine.nodes.ifelse import IfElseNode
from sluice.engine.nodes.io import AnswerNode, EndNode, StartNode
from sluice.engine.nodes.transform import (
    LegacyVariableAssignerNode,
    TemplateTransformNode,
    VariableAggregatorNode,
)
from sluice.engine.pool import VariablePool

IMPLEMENTED: dict[str, type[Node]] = {
    cls.type: cls
    for cls in (
        StartNode,
        EndNode,
        AnswerNode,
        IfElseNode,
        TemplateTransformNode,
        VariableAggregatorNode,
        LegacyVariableAssignerNode,
    )
}

# Part of Dify's catalogue, not runnable in this build yet: import warns, the run fails clearly.
KNOWN_NOT_AVAILABLE = {
    "code": "Code execution",
    "http-request": "HTTP requests",
    "assigner": "Variable assigner",
    "list-operator": "List operator",
    "iteration": "Iteration",
    "iteration-start": "Iteration",
    "loop": "Loop",
    "loop-start": "Loop",
    "loop-end": "Loop",
    "llm": "Model provider",
    "question-classifier": "Model provider",
    "parameter-extractor": "Model provider",
    "document-extractor": "File store",
    "tool": "Tool runtime",
    "human-input": "Human input",
}

UNSUPPORTED = frozenset(
    {
        "knowledge-retrieval",
        "agent",
        "datasource",
        "knowledge-index",
        "trigger-webhook",
        "trigger-schedule",
        "trigger-plugin",
    }
)


class UnavailableNode(Node):
    """Stands in for a catalogue node whose capability is not configured; fails when it runs."""

    def run_inline(self, pool: VariablePool, ctx: RunContext) -> NodeResult:
        capability = KNOWN_NOT_AVAILABLE.get(self.spec.type, self.spec.type)
        return NodeResult.failure(
            f"{capability} is not configured (node {self.spec.id})", "ServiceNotConfiguredError"
        )


def build(spec_type: str) -> type[Node]:
    return IMPLEMENTED.get(spec_type, UnavailableNode)

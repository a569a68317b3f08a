"""Node types by name: those this build runs, and those it knows but cannot run (§4, §4.14)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sluice.engine.nodes.assigner import AssignerNode
from sluice.engine.nodes.base import Node, NodeResult, RunContext
from sluice.engine.nodes.classifier import QuestionClassifierNode
from sluice.engine.nodes.code import CodeNode
from sluice.engine.nodes.containers import (
    IterationNode,
    IterationStartNode,
    LoopEndNode,
    LoopNode,
    LoopStartNode,
)
from sluice.engine.nodes.document import DocumentExtractorNode
from sluice.engine.nodes.extractor import ParameterExtractorNode
from sluice.engine.nodes.http import HttpRequestNode
from sluice.engine.nodes.human_input import HumanInputNode
from sluice.engine.nodes.ifelse import IfElseNode
from sluice.engine.nodes.io import AnswerNode, EndNode, StartNode
from sluice.engine.nodes.list_operator import ListOperatorNode
from sluice.engine.nodes.llm import LLMNode
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
        HttpRequestNode,
        DocumentExtractorNode,
        CodeNode,
        AssignerNode,
        ListOperatorNode,
        IterationNode,
        IterationStartNode,
        LoopNode,
        LoopStartNode,
        LoopEndNode,
        HumanInputNode,
        LLMNode,
        QuestionClassifierNode,
        ParameterExtractorNode,
    )
}

# Implemented node types that need a port: ``load_dsl(..., available=...)`` warns
# ``node.port_missing`` when the named capability is not configured.
CAPABILITIES = {
    "code": ("code", "Code execution"),
    "http-request": ("http", "HTTP requests"),
    "document-extractor": ("files", "File store"),
    "human-input": ("human_input", "Human input"),
    "llm": ("models", "Model provider"),
    "question-classifier": ("models", "Model provider"),
    "parameter-extractor": ("models", "Model provider"),
}

# Part of Dify's catalogue, not runnable in this build yet: import warns, the run fails clearly.
KNOWN_NOT_AVAILABLE = {
    "tool": "Tool runtime",
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

    @classmethod
    def handles(cls, data: Mapping[str, Any]) -> set[str] | None:
        return None

    def run_inline(self, pool: VariablePool, ctx: RunContext) -> NodeResult:
        capability = KNOWN_NOT_AVAILABLE.get(self.spec.type, self.spec.type)
        return NodeResult.failure(f"{capability} is not configured", "ServiceNotConfiguredError")


def build(spec_type: str) -> type[Node]:
    return IMPLEMENTED.get(spec_type, UnavailableNode)

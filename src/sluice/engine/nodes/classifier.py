"""question-classifier (§4.11): the model picks a class; the class id is the edge handle."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from sluice.engine.llm import ChatMessage, ModelInvokeError, Usage
from sluice.engine.nodes import llm_prompt as lp
from sluice.engine.nodes.base import FAILED, Node, NodeError, NodeResult, RunContext
from sluice.engine.nodes.llm import not_configured, usage_metadata
from sluice.engine.pool import VariablePool
from sluice.engine.template import render
from sluice.engine.values import ABSENT, render_text

SYSTEM = (
    "You are a text classification engine. Classify the user's input into exactly one of the "
    "categories below and answer only with a JSON object "
    '{{"category_id": "<id>", "category_name": "<name>"}}.{instruction}\nCategories:\n{categories}'
)
JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


def parse_json_object(text: str) -> dict[str, Any] | None:
    match = JSON_OBJECT.search(text)
    if not match:
        return None
    try:
        value = json.loads(match.group(0))
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


class QuestionClassifierNode(Node):
    type = "question-classifier"
    inline = False

    def classes(self) -> list[Mapping[str, Any]]:
        return [c for c in self.spec.data.get("classes") or [] if isinstance(c, Mapping)]

    def prepare(self, pool: VariablePool, ctx: RunContext) -> lp.Prompt:
        data = self.spec.data
        query = pool.get(data.get("query_variable_selector") or [])
        query_text = "" if query is ABSENT else render_text(query)
        instruction = render(str(data.get("instruction") or ""), pool)
        categories = "\n".join(f"- id: {c.get('id')}, name: {c.get('name')}" for c in self.classes())
        system = SYSTEM.format(
            instruction=f"\nInstructions: {instruction}" if instruction else "", categories=categories
        )
        limit = lp.memory_limit(data, ctx.mode)
        return lp.Prompt(
            messages=[ChatMessage("system", system)],
            query=query_text,
            conversation_id=lp.conversation_id(pool),
            memory_limit=limit,
            files=lp.vision_files(data, pool),
        )

    def _pick(self, answer: str) -> tuple[int, Mapping[str, Any]]:
        classes = self.classes()
        parsed = parse_json_object(answer) or {}
        for i, cls in enumerate(classes):
            if str(cls.get("id")) == str(parsed.get("category_id")):
                return i, cls
        for i, cls in enumerate(classes):
            if str(cls.get("name")) == str(parsed.get("category_name")):
                return i, cls
        return 0, classes[0]

    async def run(self, prompt: lp.Prompt, ctx: RunContext) -> NodeResult:
        inputs = {"query": prompt.query}
        if ctx.ports.models is None:
            return not_configured(inputs)
        if not self.classes():
            return NodeResult.failure("Question classifier has no classes", "QuestionClassifierNodeError")
        prompt.memory_limit = prompt.memory_limit or 0
        messages = list(prompt.messages)
        try:
            history = await lp.with_memory_and_files(
                lp.Prompt([], None, prompt.conversation_id, prompt.memory_limit, prompt.files), ctx
            )
            messages = [*messages, *history, ChatMessage("user", prompt.query or "")]
            request = lp.request(self.spec.data, messages, response_format={"type": "json_object"})
            chunks: list[str] = []
            usage = Usage()
            async for delta in ctx.ports.models.stream(request):
                chunks.append(delta.text)
                usage = delta.usage or usage
        except (ModelInvokeError, NodeError) as exc:
            return NodeResult(status=FAILED, inputs=inputs, error=exc.message, error_type=exc.error_type)
        index, chosen = self._pick("".join(chunks))
        usage_dict = usage.to_dict()
        provider, model, mode, _ = lp.model_config(self.spec.data)
        return NodeResult(
            inputs=inputs,
            process_data={
                "model_mode": mode,
                "prompts": lp.prompt_log(messages),
                "usage": usage_dict,
                "finish_reason": None,
                "model_provider": provider,
                "model_name": model,
            },
            outputs={
                "class_name": chosen.get("name"),
                "class_label": chosen.get("label") or f"CLASS {index + 1}",
                "class_id": chosen.get("id"),
                "usage": usage_dict,
            },
            metadata=usage_metadata(usage),
            llm_usage=usage_dict,
            edge_source_handle=str(chosen.get("id")),
        )

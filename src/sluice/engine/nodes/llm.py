"""llm (§4.11): a chat completion, streamed as ``[node, "text"]`` chunks while it arrives."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from sluice.engine.llm import ChatMessage, ModelInvokeError, Usage
from sluice.engine.nodes import llm_prompt as lp
from sluice.engine.nodes.base import FAILED, Node, NodeError, NodeResult, RunContext
from sluice.engine.pool import VariablePool


def usage_metadata(usage: Usage) -> dict[str, Any]:
    return {"total_tokens": usage.total_tokens, "total_price": "0", "currency": "USD"}


def not_configured(inputs: dict[str, Any] | None = None) -> NodeResult:
    return NodeResult.failure(
        "Model provider is not configured", "ServiceNotConfiguredError", inputs=inputs or {}
    )


class LLMNode(Node):
    type = "llm"
    inline = False
    streams = True

    def prepare(self, pool: VariablePool, ctx: RunContext) -> lp.Prompt:
        data = self.spec.data
        context = lp.context_text(data, pool)
        template = data.get("prompt_template") or []
        items = (
            [template] if isinstance(template, Mapping) else [t for t in template if isinstance(t, Mapping)]
        )
        messages = [
            ChatMessage(str(item.get("role") or "user"), lp.render_prompt_text(item, data, pool, context))
            for item in items
        ]
        limit = lp.memory_limit(data, ctx.mode)
        return lp.Prompt(
            messages=messages,
            query=lp.memory_query(data, pool) if limit else None,
            conversation_id=lp.conversation_id(pool),
            memory_limit=limit,
            files=lp.vision_files(data, pool),
        )

    def _response_format(self) -> dict[str, Any] | None:
        data = self.spec.data
        enabled = data.get("structured_output_switch_on", data.get("structured_output_enabled"))
        schema = (data.get("structured_output") or {}).get("schema") if enabled else None
        if not isinstance(schema, Mapping):
            return None
        return {"type": "json_schema", "json_schema": {"name": "structured_output", "schema": dict(schema)}}

    async def run(self, prompt: lp.Prompt, ctx: RunContext) -> NodeResult:
        if ctx.ports.models is None:
            return not_configured()
        data = self.spec.data
        separated = data.get("reasoning_format") == "separated"
        started = time.perf_counter()
        text: list[str] = []
        reasoning: list[str] = []
        usage = Usage()
        finish_reason: str | None = None
        splitter = lp.ThinkSplitter()
        text_selector = [self.spec.id, "text"]
        reasoning_selector = [self.spec.id, "reasoning_content"]

        def emit(pieces: list[tuple[str, str]]) -> None:
            for kind, piece in pieces:
                if kind == "reasoning" and separated:
                    reasoning.append(piece)
                    ctx.reasoning(reasoning_selector, piece)
                else:
                    piece = f"<think>{piece}</think>" if kind == "reasoning" else piece
                    text.append(piece)
                    ctx.stream(text_selector, piece)

        try:
            messages = await lp.with_memory_and_files(prompt, ctx)
            request = lp.request(data, messages, response_format=self._response_format())
            async for delta in ctx.ports.models.stream(request):
                if delta.reasoning:
                    emit([("reasoning", delta.reasoning)])
                if delta.text:
                    emit(splitter.feed(delta.text) if separated else [("text", delta.text)])
                if delta.usage is not None:
                    usage = delta.usage
                finish_reason = delta.finish_reason or finish_reason
            emit(splitter.flush())
        except (ModelInvokeError, NodeError) as exc:
            return NodeResult(
                status=FAILED,
                inputs={},
                error=exc.message,
                error_type=exc.error_type,
                process_data={"prompts": lp.prompt_log(prompt.messages)},
            )
        ctx.stream(text_selector, "", is_final=True)
        if separated:
            ctx.reasoning(reasoning_selector, "", is_final=True)
        answer = "".join(text)
        usage_dict = usage.to_dict(time.perf_counter() - started)
        outputs: dict[str, Any] = {"text": answer, "usage": usage_dict, "finish_reason": finish_reason}
        if separated:
            outputs["reasoning_content"] = "".join(reasoning)
        if request.response_format is not None:
            try:
                outputs["structured_output"] = json.loads(answer)
            except ValueError:
                return NodeResult(
                    status=FAILED,
                    outputs=outputs,
                    error=f"Failed to parse structured output: {answer[:200]!r}",
                    error_type="LLMNodeError",
                    llm_usage=usage_dict,
                )
        provider, model, mode, _ = lp.model_config(data)
        return NodeResult(
            inputs={},
            process_data={
                "model_mode": mode,
                "prompts": lp.prompt_log(messages),
                "usage": usage_dict,
                "finish_reason": finish_reason,
                "model_provider": provider,
                "model_name": model,
            },
            outputs=outputs,
            metadata=usage_metadata(usage),
            llm_usage=usage_dict,
        )

"""parameter-extractor (§4.11): typed parameters pulled from text by function calling or a JSON
prompt; ``__is_success``/``__reason`` say whether every required one was found."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sluice.engine.llm import ChatMessage, ModelInvokeError, Usage
from sluice.engine.nodes import llm_prompt as lp
from sluice.engine.nodes.base import FAILED, Node, NodeError, NodeResult, RunContext
from sluice.engine.nodes.classifier import parse_json_object
from sluice.engine.nodes.llm import not_configured, usage_metadata
from sluice.engine.pool import VariablePool
from sluice.engine.template import render
from sluice.engine.values import ABSENT, render_text

TOOL_NAME = "extract_parameters"
JSON_TYPES = {
    "string": "string",
    "number": "number",
    "bool": "boolean",
    "boolean": "boolean",
    "select": "string",
}
ZERO: dict[str, Any] = {"string": "", "number": 0, "boolean": False, "bool": False, "select": ""}
SYSTEM = (
    "Extract the parameters described by the JSON schema below from the user's text.{instruction} "
    "Answer only with a JSON object that follows the schema.\nSchema: {schema}"
)


def _param_schema(param: Mapping[str, Any]) -> dict[str, Any]:
    kind = str(param.get("type") or "string")
    if kind.startswith("array[") and kind.endswith("]"):
        inner = kind[6:-1]
        schema: dict[str, Any] = {"type": "array", "items": {"type": JSON_TYPES.get(inner, inner)}}
    else:
        schema = {"type": JSON_TYPES.get(kind, "string")}
    if param.get("options"):
        schema["enum"] = list(param["options"])
    if param.get("description"):
        schema["description"] = str(param["description"])
    return schema


def _coerce(kind: str, value: Any) -> tuple[bool, Any]:
    """``(ok, value)`` for a model-given value of a declared type."""
    if kind.startswith("array["):
        return isinstance(value, list), value
    if kind == "number":
        if isinstance(value, bool):
            return False, value
        if isinstance(value, int | float):
            return True, value
        try:
            number = float(str(value))
        except ValueError:
            return False, value
        return True, int(number) if number.is_integer() and "." not in str(value) else number
    if kind in ("bool", "boolean"):
        if isinstance(value, bool):
            return True, value
        if str(value).lower() in ("true", "false"):
            return True, str(value).lower() == "true"
        return False, value
    return isinstance(value, str), value


class ParameterExtractorNode(Node):
    type = "parameter-extractor"
    inline = False

    def parameters(self) -> list[Mapping[str, Any]]:
        return [p for p in self.spec.data.get("parameters") or [] if isinstance(p, Mapping)]

    def schema(self) -> dict[str, Any]:
        params = self.parameters()
        return {
            "type": "object",
            "properties": {str(p.get("name")): _param_schema(p) for p in params},
            "required": [str(p.get("name")) for p in params if p.get("required")],
        }

    def prepare(self, pool: VariablePool, ctx: RunContext) -> lp.Prompt:
        data = self.spec.data
        query = pool.get(data.get("query") or [])
        query_text = "" if query is ABSENT else render_text(query)
        instruction = render(str(data.get("instruction") or ""), pool)
        system = SYSTEM.format(
            instruction=f" {instruction}" if instruction else "",
            schema=json.dumps(self.schema(), ensure_ascii=False),
        )
        return lp.Prompt(
            messages=[ChatMessage("system", system)],
            query=query_text,
            conversation_id=lp.conversation_id(pool),
            memory_limit=lp.memory_limit(data, ctx.mode),
            files=lp.vision_files(data, pool),
        )

    async def run(self, prompt: lp.Prompt, ctx: RunContext) -> NodeResult:
        inputs = {"query": prompt.query}
        if ctx.ports.models is None:
            return not_configured(inputs)
        function_call = self.spec.data.get("reasoning_mode", "function_call") == "function_call"
        extra: dict[str, Any] = {}
        if function_call:
            tool = {"type": "function", "function": {"name": TOOL_NAME, "parameters": self.schema()}}
            extra = {"tools": (tool,), "tool_choice": {"type": "function", "function": {"name": TOOL_NAME}}}
        try:
            history = await lp.with_memory_and_files(
                lp.Prompt([], None, prompt.conversation_id, prompt.memory_limit, prompt.files), ctx
            )
            messages = [*prompt.messages, *history, ChatMessage("user", prompt.query or "")]
            request = lp.request(self.spec.data, messages, **extra)
            text: list[str] = []
            arguments: list[str] = []
            usage = Usage()
            async for delta in ctx.ports.models.stream(request):
                text.append(delta.text)
                for call in delta.tool_calls:
                    function = call.get("function") or {}
                    arguments.append(str(function.get("arguments") or ""))
                usage = delta.usage or usage
        except (ModelInvokeError, NodeError) as exc:
            outputs = {"__is_success": 0, "__reason": exc.message, "__error": exc.message}
            return NodeResult(
                status=FAILED, inputs=inputs, outputs=outputs, error=exc.message, error_type=exc.error_type
            )
        raw = "".join(arguments) if arguments else "".join(text)
        usage_dict = usage.to_dict()
        outputs = self._outputs(parse_json_object(raw) if not arguments else _loads(raw))
        outputs["__usage"] = usage_dict
        provider, model, mode, _ = lp.model_config(self.spec.data)
        return NodeResult(
            inputs=inputs,
            process_data={
                "model_mode": mode,
                "prompts": lp.prompt_log(messages),
                "usage": usage_dict,
                "function": raw,
                "model_provider": provider,
                "model_name": model,
            },
            outputs=outputs,
            metadata=usage_metadata(usage),
            llm_usage=usage_dict,
        )

    def _outputs(self, found: dict[str, Any] | None) -> dict[str, Any]:
        outputs: dict[str, Any] = {"__is_success": 1, "__reason": None}
        if found is None:
            outputs.update(__is_success=0, __reason="The model's answer is not a JSON object")
            found = {}
        for param in self.parameters():
            name, kind = str(param.get("name")), str(param.get("type") or "string")
            zero = [] if kind.startswith("array[") else ZERO.get(kind)
            if name not in found or found[name] is None:
                outputs[name] = zero
                if param.get("required") and outputs["__is_success"]:
                    outputs.update(__is_success=0, __reason=f"Required parameter '{name}' was not extracted")
                continue
            ok, value = _coerce(kind, found[name])
            if ok and param.get("options") and value not in param["options"]:
                ok = False
            outputs[name] = value if ok else zero
            if not ok and outputs["__is_success"]:
                outputs.update(__is_success=0, __reason=f"Parameter '{name}' is not a valid {kind}")
        return outputs


def _loads(raw: str) -> dict[str, Any] | None:
    try:
        value = json.loads(raw)
    except ValueError:
        return parse_json_object(raw)
    return value if isinstance(value, dict) else None

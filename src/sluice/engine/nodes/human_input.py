"""human-input, the graph-level contract (§4.13): a branch node whose answer comes from the
``HumanInputService`` port. Unanswered, it asks the run to pause and re-runs on resume with the
same execution id; answered, it leaves through the chosen action (or ``__timeout``)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from sluice.engine import events as ev
from sluice.engine.nodes import schema
from sluice.engine.nodes.base import PAUSED, Loc, Node, NodeResult, Problems, RunContext
from sluice.engine.pool import VariablePool
from sluice.engine.ports import FormFailed, FormPending, FormSubmitted, HumanInputRequest
from sluice.engine.template import REFERENCE
from sluice.engine.values import ABSENT, is_file, to_jsonable

TIMEOUT_HANDLE = "__timeout"
ACTION_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,19}")
OUTPUT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,29}")
RESERVED_OUTPUTS = frozenset({"__action_id", "__action_value", "__rendered_content"})
BUTTON_STYLES = frozenset({"primary", "default", "accent", "ghost"})
PLACEHOLDER = re.compile(r"\{\{#\$output\.([A-Za-z_][A-Za-z0-9_]{0,29})#\}\}")


def _form_text(value: Any) -> str:
    """Form-content substitution (human-input.md §1.2)."""
    if value is ABSENT or value is None:
        return ""
    if isinstance(value, str):
        return value
    if is_file(value):
        return str(value.get("filename") or "")
    if isinstance(value, dict | list):
        return json.dumps(to_jsonable(value), ensure_ascii=False)
    return str(value)


def _filled(value: Any, input_type: str) -> str:
    """A submitted value inside ``__rendered_content`` (human-input.md §2.4)."""
    if value is None:
        return ""
    if input_type == "file":
        return "[file]"
    if input_type == "file-list":
        return f"[{len(value) if isinstance(value, list) else 0} files]"
    if isinstance(value, str):
        return value
    return json.dumps(to_jsonable(value), ensure_ascii=False)


class HumanInputNode(Node):
    type = "human-input"
    inline = False

    def _inputs(self) -> list[Mapping[str, Any]]:
        return [i for i in self.spec.data.get("inputs") or [] if isinstance(i, Mapping)]

    def _actions(self) -> list[Mapping[str, Any]]:
        return [a for a in self.spec.data.get("user_actions") or [] if isinstance(a, Mapping)]

    def prepare(self, pool: VariablePool, ctx: RunContext) -> HumanInputRequest:
        content = str(self.spec.data.get("form_content") or "")
        rendered = REFERENCE.sub(lambda m: _form_text(pool.get(m.group(1).split("."))), content)
        values: dict[str, Any] = {}
        for item in self._inputs():
            for source in (item.get("default"), item.get("option_source")):
                if isinstance(source, Mapping) and source.get("type") == "variable":
                    selector = source.get("selector") or []
                    value = pool.get(selector)
                    if value is not ABSENT:
                        values[".".join(str(s) for s in selector)] = to_jsonable(value, mask=False)
        for method in self.spec.data.get("delivery_methods") or []:  # email subject/body variables (§1.5)
            config = method.get("config") if isinstance(method, Mapping) else None
            for text in (config.get("subject"), config.get("body")) if isinstance(config, Mapping) else ():
                for match in REFERENCE.finditer(text if isinstance(text, str) else ""):
                    value = pool.get(match.group(1).split("."))
                    if value is not ABSENT:
                        values[match.group(1)] = to_jsonable(value, mask=False)
        return HumanInputRequest(
            run_id=ctx.run_id,
            execution_id=ctx.execution_id,
            node_id=self.spec.id,
            node_title=self.spec.title,
            frame_id=ctx.frame_id,
            data=self.spec.data,
            rendered_content=rendered,
            values=values,
        )

    async def run(self, prepared: HumanInputRequest, ctx: RunContext) -> NodeResult:
        service = ctx.ports.human_input
        if service is None:
            return NodeResult.failure("Human input is not configured", "ServiceNotConfiguredError")
        decision = await service.decide(prepared)
        if isinstance(decision, FormPending):
            reason = {
                "TYPE": "human_input_required",
                "form_id": decision.form_id,
                "node_id": self.spec.id,
                "node_title": self.spec.title,
            }
            return NodeResult(status=PAUSED, pause=reason)
        if isinstance(decision, FormFailed):
            return NodeResult.failure(decision.error)
        rendered = prepared.rendered_content
        if isinstance(decision, FormSubmitted):
            declared = {str(i.get("output_variable_name")): str(i.get("type")) for i in self._inputs()}
            submitted = {k: v for k, v in decision.submitted_data.items() if k in declared}
            filled = PLACEHOLDER.sub(
                lambda m: _filled(submitted.get(m.group(1)), declared.get(m.group(1), "")), rendered
            )
            titles = {str(a.get("id")): str(a.get("title") or "") for a in self._actions()}
            action_text = titles.get(decision.action_id) or decision.action_id
            outputs = {
                **submitted,
                "__action_id": decision.action_id,
                "__action_value": titles.get(decision.action_id, ""),
                "__rendered_content": filled,
            }
            event = {
                "rendered_content": filled,
                "action_id": decision.action_id,
                "action_text": action_text,
                "submitted_data": to_jsonable(dict(decision.submitted_data)),
            }
            return NodeResult(
                inputs=dict(submitted),
                outputs=outputs,
                edge_source_handle=decision.action_id,
                events=[(ev.HUMAN_INPUT_FORM_FILLED, event)],
            )
        outputs = {"__action_id": "", "__action_value": "", "__rendered_content": rendered}
        return NodeResult(
            outputs=outputs,
            edge_source_handle=TIMEOUT_HANDLE,
            events=[(ev.HUMAN_INPUT_FORM_TIMEOUT, {"expiration_time": decision.expiration_time})],
        )

    @classmethod
    def check_data(cls, data: Mapping[str, Any]) -> Problems:
        """Import validation (human-input.md §1.6); messages name the rule."""
        problems: Problems = []
        schema.string(data, "form_content", problems, required=False)
        actions = schema.items(data, "user_actions", problems)
        if not actions:
            problems.append((("user_actions",), "no_user_action: at least one user action is required"))
        seen: set[str] = set()
        for i, action in enumerate(actions):
            if not isinstance(action, Mapping) or not isinstance(action.get("id"), str):
                problems.append((("user_actions", i, "id"), "must be a string"))
                continue
            action_id = action["id"]
            if not ACTION_ID.fullmatch(action_id) or action_id == TIMEOUT_HANDLE:
                problems.append((("user_actions", i, "id"), f"invalid_action: bad action id {action_id!r}"))
            elif action_id in seen:
                problems.append((("user_actions", i, "id"), "duplicate_action_id: duplicated user action id"))
            seen.add(action_id)
            if len(str(action.get("title") or "")) > 100:
                problems.append((("user_actions", i, "title"), "invalid_action: title longer than 100"))
            if action.get("button_style", "default") not in BUTTON_STYLES:
                problems.append((("user_actions", i, "button_style"), "invalid_action: unknown button style"))
        names: set[str] = set()
        for i, item in enumerate(schema.items(data, "inputs", problems)):
            if not isinstance(item, Mapping) or not isinstance(item.get("output_variable_name"), str):
                problems.append((("inputs", i, "output_variable_name"), "must be a string"))
                continue
            name = item["output_variable_name"]
            if not OUTPUT_NAME.fullmatch(name) or name in RESERVED_OUTPUTS:
                problems.append(
                    (("inputs", i, "output_variable_name"), f"invalid_output_variable_name: {name!r}")
                )
            elif name in names:
                problems.append(
                    (
                        ("inputs", i, "output_variable_name"),
                        "duplicate_output_variable_name: duplicated output_variable_name",
                    )
                )
            names.add(name)
            types = item.get("allowed_file_types") or []
            if "custom" in types and not item.get("allowed_file_extensions"):
                problems.append((("inputs", i), "invalid_input: custom file type needs extensions"))
        timeout = data.get("timeout", 36)
        if not isinstance(timeout, int) or isinstance(timeout, bool) or timeout < 1:
            problems.append((("timeout",), "invalid_timeout: must be an integer >= 1"))
        if data.get("timeout_unit", "hour") not in ("hour", "day"):
            problems.append((("timeout_unit",), "invalid_timeout: unit must be hour or day"))
        methods = [m for m in data.get("delivery_methods") or [] if isinstance(m, Mapping)]
        if not any(m.get("enabled", True) and m.get("type") in ("webapp", "email") for m in methods):
            problems.append(
                (("delivery_methods",), "no_delivery_method: no enabled webapp or email delivery")
            )
        return problems

    @classmethod
    def read_selectors(cls, data: Mapping[str, Any]) -> Iterator[tuple[Loc, Any]]:
        for i, item in enumerate(data.get("inputs") or []):
            if not isinstance(item, Mapping):
                continue
            for key in ("default", "option_source"):
                source = item.get(key)
                if isinstance(source, Mapping) and source.get("type") == "variable":
                    yield ("inputs", i, key, "selector"), source.get("selector")

    @classmethod
    def handles(cls, data: Mapping[str, Any]) -> set[str] | None:
        actions = {str(a.get("id")) for a in data.get("user_actions") or [] if isinstance(a, Mapping)}
        return actions | {TIMEOUT_HANDLE}

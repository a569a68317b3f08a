"""Import stages on node contents: node schemas, environment and conversation variables, and the
reference warnings (§2.2, §2.3)."""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from dataclasses import replace
from typing import Any

from sluice.engine.findings import Findings
from sluice.engine.graph import AppMeta, EdgeSpec, NodeSpec
from sluice.engine.nodes import schema
from sluice.engine.nodes.registry import CAPABILITIES, KNOWN_NOT_AVAILABLE, build
from sluice.engine.scopes import node_loc

NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
DEFAULT_VALUE_TYPES = frozenset(
    {"string", "number", "object", "array[number]", "array[string]", "array[object]", "array[file]"}
)
ENV_TYPES = frozenset({"string", "number", "secret"})
CONVERSATION_TYPES = schema.VALUE_TYPES
IMPORT_WARNING_CODES = {"http-request": "node.http_method_options"}
NAMESPACES = ("sys", "env", "conversation")


def _default_value(item: Any) -> tuple[str, Any]:
    """One ``default_value`` entry: strings parsed by type (number → float, structures → JSON),
    then type-checked."""
    if not isinstance(item, Mapping) or not isinstance(item.get("key"), str):
        raise ValueError("each entry needs a string key")
    kind, value = item.get("type"), item.get("value")
    if kind not in DEFAULT_VALUE_TYPES:
        raise ValueError(f"unknown type {kind!r}")
    if isinstance(value, str) and kind == "number":
        value = float(value)
    elif isinstance(value, str) and kind != "string":
        value = json.loads(value)
    if kind == "array[file]":
        ok = isinstance(value, list)
    else:
        ok = schema.type_mismatch(str(kind), value) is None
    if not ok:
        raise ValueError(f"value {value!r} is not of type {kind}")
    return str(item["key"]), value


def check_node_schemas(nodes: dict[str, NodeSpec], found: Findings) -> dict[str, NodeSpec]:
    out: dict[str, NodeSpec] = {}
    for spec in nodes.values():
        runner = build(spec.type)
        data = spec.data
        bad_selectors: set[tuple[str | int, ...]] = set()
        for exact, selectors in ((False, runner.read_selectors(data)), (True, runner.write_selectors(data))):
            for loc, selector in selectors:
                if loc in bad_selectors or schema.is_selector(selector, exact=exact):
                    continue
                bad_selectors.add(loc)
                need = "exactly two" if exact else "at least two"
                found.error(
                    "selector.invalid",
                    f"Node {spec.id}: selector {selector!r} must list {need} non-empty names",
                    (*node_loc(spec.id), "data", *loc),
                    node_id=spec.id,
                )
        problems = [p for p in runner.check_data(data) if p[0] not in bad_selectors]
        if not isinstance(data.get("title", ""), str):
            problems.append((("title",), "must be a string"))
        if spec.error_strategy not in (None, "fail-branch", "default-value"):
            problems.append((("error_strategy",), f"unknown error strategy {spec.error_strategy!r}"))
        retry = data.get("retry_config")
        if retry is not None and not isinstance(retry, Mapping):
            problems.append((("retry_config",), "must be a mapping"))
        elif isinstance(retry, Mapping):
            schema.integer(retry, "max_retries", problems, loc=("retry_config",), default=0, minimum=0)
            schema.integer(retry, "retry_interval", problems, loc=("retry_config",), default=0, minimum=0)
        defaults: dict[str, Any] = {}
        for i, item in enumerate(data.get("default_value") or []):
            try:
                key, value = _default_value(item)
            except (ValueError, TypeError) as exc:
                problems.append((("default_value", i), f"invalid default value: {exc}"))
                continue
            defaults[key] = value
        if problems:
            details = tuple({"loc": list(loc), "msg": msg} for loc, msg in problems)
            found.error(
                "node.data_invalid",
                f"Node {spec.id} ({spec.type}) has invalid data: "
                + "; ".join(f"{'.'.join(str(p) for p in loc) or 'data'}: {msg}" for loc, msg in problems),
                (*node_loc(spec.id), "data"),
                node_id=spec.id,
                details=details,
            )
        out[spec.id] = replace(spec, default_value=defaults) if defaults else spec
    return out


def _check_value(kind: str, value: Any) -> str | None:
    if kind == "secret":
        return None if value is None or isinstance(value, str) else "a secret value must be a string"
    if kind == "number" and isinstance(value, str):
        try:
            float(value)
            return None
        except ValueError:
            return f"value {value!r} is not a number"
    try:
        schema.typed_constant(kind, value)
    except ValueError as exc:
        return str(exc)
    return None


def check_variables(workflow: Mapping[str, Any], found: Findings) -> None:
    """Environment and conversation variables (§2.2): names, types and values."""
    for key, code, types in (
        ("environment_variables", "env.invalid", ENV_TYPES),
        ("conversation_variables", "conversation_var.invalid", CONVERSATION_TYPES),
    ):
        raw = workflow.get(key)
        if raw is None:
            continue
        if not isinstance(raw, list):
            found.error(code, f"{key} must be a list", ("workflow", key))
            continue
        names: set[str] = set()
        for i, var in enumerate(raw):
            loc = ("workflow", key, i)
            if not isinstance(var, Mapping):
                found.error(code, "Each variable must be a mapping", loc)
                continue
            name = var.get("name")
            if not isinstance(name, str) or not NAME_RE.match(name):
                found.error(code, f"Invalid variable name {name!r}", (*loc, "name"))
                continue
            if name in names:
                found.error(code, f"Duplicate variable name {name!r}", (*loc, "name"))
                continue
            names.add(name)
            kind = var.get("value_type")
            if kind not in types:
                found.error(code, f"Variable {name}: unknown value_type {kind!r}", (*loc, "value_type"))
                continue
            value = var.get("value")
            if value is None or (value == "" and kind in ("secret", "string")):
                continue
            problem = _check_value(str(kind), value)
            if problem is not None:
                found.error(code, f"Variable {name}: {problem}", (*loc, "value"))


def parsed_value(var: Mapping[str, Any]) -> Any:
    """A declared variable's default as a pool value (JSON text parsed, numbers converted)."""
    kind, value = str(var.get("value_type")), var.get("value")
    if kind == "number" and isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return value
        return int(number) if number.is_integer() and "." not in value else number
    if kind in ("string", "secret"):
        return "" if value is None else value
    if value is None:
        return schema_zero(kind)
    try:
        return schema.typed_constant(kind, value)
    except ValueError:
        return value


def schema_zero(kind: str) -> Any:
    if kind.startswith("array"):
        return []
    return {"object": {}, "number": 0, "boolean": False}.get(kind)


def declared_types(
    nodes: Mapping[str, NodeSpec], conversation: tuple[Mapping[str, Any], ...]
) -> dict[tuple[str, str], str]:
    types = {("conversation", str(v.get("name"))): str(v.get("value_type")) for v in conversation}
    for spec in nodes.values():
        if spec.type != "loop":
            continue
        for var in spec.data.get("loop_variables") or []:
            if isinstance(var, Mapping):
                types[(spec.id, str(var.get("label")))] = str(var.get("var_type"))
    return types


def _reachable(start: str, succ: Mapping[str, list[str]]) -> set[str]:
    reached, todo = {start}, [start]
    while todo:
        for nxt in succ.get(todo.pop(), []):
            if nxt not in reached:
                reached.add(nxt)
                todo.append(nxt)
    return reached


def check_references(
    app: AppMeta,
    nodes: Mapping[str, NodeSpec],
    edges: list[EdgeSpec],
    root_id: str,
    children: Mapping[str, list[str]],
    workflow: Mapping[str, Any],
    available: Collection[str] | None,
    found: Findings,
) -> None:
    env = {v.get("name") for v in workflow.get("environment_variables") or [] if isinstance(v, Mapping)}
    conv = {v.get("name") for v in workflow.get("conversation_variables") or [] if isinstance(v, Mapping)}
    for spec in nodes.values():
        runner = build(spec.type)
        for sel_loc, selector in runner.read_selectors(spec.data):
            ns, name = selector[0], selector[1]
            known = (
                ns in nodes
                or ns == "sys"
                or (ns == "env" and name in env)
                or (ns == "conversation" and name in conv)
            )
            if not known:
                found.warn(
                    "selector.unknown_node",
                    f"Node {spec.id} reads {'.'.join(selector)}, which nothing provides",
                    (*node_loc(spec.id), "data", *sel_loc),
                    node_id=spec.id,
                )
        for loc, message in getattr(runner, "import_warnings", lambda _data: [])(spec.data):
            code = IMPORT_WARNING_CODES.get(spec.type, "node.import_warning")
            found.warn(
                code, f"Node {spec.id}: {message}", (*node_loc(spec.id), "data", *loc), node_id=spec.id
            )
        capability = CAPABILITIES.get(spec.type)
        missing = spec.type in KNOWN_NOT_AVAILABLE or (
            capability is not None and available is not None and capability[0] not in available
        )
        if missing:
            label = KNOWN_NOT_AVAILABLE.get(spec.type) or (capability[1] if capability else spec.type)
            found.warn(
                "node.port_missing",
                f"{label} is not configured; node {spec.id} will fail when it runs",
                node_loc(spec.id),
                node_id=spec.id,
            )
    for edge in edges:
        source = nodes[edge.source]
        handles = build(source.type).handles(source.data)
        if handles is not None and source.error_strategy == "fail-branch":
            handles = handles | {"source", "fail-branch"}
        if handles is not None and edge.source_handle not in handles:
            found.warn(
                "edge.handle_unknown",
                f"Edge {edge.id} leaves {edge.source} by handle '{edge.source_handle}', "
                "which it never produces",
                ("workflow", "graph", "edges", edge.id),
                edge_id=edge.id,
            )
    succ: dict[str, list[str]] = {}
    for edge in edges:
        succ.setdefault(edge.source, []).append(edge.target)
    reached = _reachable(root_id, succ)
    for container in children:
        start = nodes[container].data.get("start_node_id")
        if isinstance(start, str):
            reached |= _reachable(start, succ)
    for spec in nodes.values():
        if spec.id not in reached:
            found.warn(
                "node.unreachable", f"Node {spec.id} can never run", node_loc(spec.id), node_id=spec.id
            )
    if not any(n.type in ("end", "answer") for n in nodes.values()):
        found.warn("graph.no_output_node", "Workflow has no end or answer node", ("workflow", "graph"))
    wrong = "answer" if app.mode == "workflow" else "end"
    for spec in nodes.values():
        if spec.type == wrong:
            found.warn(
                "node.mode_mismatch",
                f"Node {spec.id} of type {wrong} does not belong in a {app.mode} app",
                node_loc(spec.id),
                node_id=spec.id,
            )

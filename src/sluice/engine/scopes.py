"""Graph-level validation stages after parsing: scopes, root, cycles, node schemas, references."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any

from sluice.engine.findings import Findings
from sluice.engine.graph import (
    BRANCH_TYPES,
    CONTAINER_TYPES,
    AppMeta,
    EdgeSpec,
    NodeSpec,
)
from sluice.engine.nodes.registry import KNOWN_NOT_AVAILABLE

NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
START_TYPES = {"iteration-start": "iteration", "loop-start": "loop"}
DEFAULT_VALUE_TYPES = {
    "string",
    "number",
    "object",
    "array[number]",
    "array[string]",
    "array[object]",
    "array[file]",
}
Loc = tuple[str | int, ...]


def _node_loc(node_id: str) -> Loc:
    return ("workflow", "graph", "nodes", node_id)


def check_graph(
    app: AppMeta,
    nodes: dict[str, NodeSpec],
    edges: list[EdgeSpec],
    workflow: Mapping[str, Any],
    found: Findings,
) -> tuple[dict[str, NodeSpec], str | None]:
    _check_scopes(nodes, edges, found)
    if found.errors:
        return nodes, None
    roots = [n for n in nodes.values() if n.type == "start" and not n.container_id]
    if not roots:
        found.error("graph.no_start", "Workflow has no start node", ("workflow", "graph", "nodes"))
    elif len(roots) > 1:
        found.error(
            "graph.multiple_start",
            f"Workflow has {len(roots)} start nodes; exactly one is required",
            ("workflow", "graph", "nodes"),
        )
    if found.errors:
        return nodes, None
    _check_cycles(nodes, edges, found)
    if found.errors:
        return nodes, None
    nodes = _check_schemas(nodes, workflow, found)
    if found.errors:
        return nodes, None
    _check_references(app, nodes, edges, roots[0].id, workflow, found)
    return nodes, roots[0].id


def _check_scopes(nodes: dict[str, NodeSpec], edges: list[EdgeSpec], found: Findings) -> None:
    for spec in nodes.values():
        owner = spec.container_id
        if owner:
            if owner not in nodes:
                found.error(
                    "container.owner_unknown",
                    f"Node {spec.id} belongs to unknown container '{owner}'",
                    _node_loc(spec.id),
                    node_id=spec.id,
                )
            elif nodes[owner].type not in CONTAINER_TYPES:
                found.error(
                    "container.not_container",
                    f"Node {spec.id} belongs to '{owner}', which is not an iteration or loop",
                    _node_loc(spec.id),
                    node_id=spec.id,
                )
        expected = START_TYPES.get(spec.type) or ("loop" if spec.type == "loop-end" else None)
        if expected and (not owner or owner not in nodes or nodes[owner].type != expected):
            found.error(
                "container.start_invalid",
                f"Node {spec.id} of type {spec.type} must be inside a {expected}",
                _node_loc(spec.id),
                node_id=spec.id,
            )
    for spec in nodes.values():
        if spec.type in CONTAINER_TYPES:
            start = spec.data.get("start_node_id")
            child = nodes.get(start) if isinstance(start, str) else None
            if child is None or child.container_id != spec.id:
                found.error(
                    "container.start_invalid",
                    f"Container {spec.id} has no valid start_node_id",
                    (*_node_loc(spec.id), "data", "start_node_id"),
                    node_id=spec.id,
                )
    for edge in edges:
        if nodes[edge.source].container_id != nodes[edge.target].container_id:
            found.error(
                "edge.crosses_scope",
                f"Edge {edge.id} connects nodes of different containers",
                ("workflow", "graph", "edges", edge.id),
                edge_id=edge.id,
            )


def _check_cycles(nodes: dict[str, NodeSpec], edges: list[EdgeSpec], found: Findings) -> None:
    succ: dict[str, list[str]] = {n: [] for n in nodes}
    for edge in edges:
        succ[edge.source].append(edge.target)
    state: dict[str, int] = {}
    for root in nodes:
        if state.get(root):
            continue
        path: list[str] = []
        stack: list[tuple[str, Iterator[str]]] = [(root, iter(succ[root]))]
        state[root], path = 1, [root]
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                path.pop()
                state[node] = 2
            elif state.get(child) == 1:
                cycle = [*path[path.index(child) :], child]
                found.error(
                    "graph.cycle", "Graph contains a cycle: " + " → ".join(cycle), ("workflow", "graph")
                )
                return
            elif not state.get(child):
                state[child] = 1
                path.append(child)
                stack.append((child, iter(succ[child])))


def _parse_default(item: Mapping[str, Any]) -> Any:
    kind, value = item.get("type"), item.get("value")
    if isinstance(value, str) and kind == "number":
        return float(value)
    if isinstance(value, str) and kind != "string":
        return json.loads(value)
    return value


def _check_schemas(
    nodes: dict[str, NodeSpec], workflow: Mapping[str, Any], found: Findings
) -> dict[str, NodeSpec]:
    out: dict[str, NodeSpec] = {}
    for spec in nodes.values():
        loc = _node_loc(spec.id)
        defaults: dict[str, Any] = {}
        for i, item in enumerate(spec.data.get("default_value") or []):
            try:
                if not isinstance(item, Mapping) or item.get("type") not in DEFAULT_VALUE_TYPES:
                    raise ValueError("unknown type")
                defaults[str(item["key"])] = _parse_default(item)
            except (ValueError, KeyError, TypeError) as exc:
                found.error(
                    "node.data_invalid",
                    f"Node {spec.id}: invalid default_value ({exc})",
                    (*loc, "data", "default_value", i),
                    node_id=spec.id,
                )
        if spec.error_strategy not in (None, "fail-branch", "default-value"):
            found.error(
                "node.data_invalid",
                f"Node {spec.id}: unknown error_strategy '{spec.error_strategy}'",
                (*loc, "data", "error_strategy"),
                node_id=spec.id,
            )
        if spec.type == "code" and spec.data.get("code_language") not in ("python3", "javascript"):
            found.error(
                "node.data_invalid",
                f"Node {spec.id}: code_language must be python3 or javascript",
                (*loc, "data", "code_language"),
                node_id=spec.id,
            )
        for sel_loc, selector in node_selectors(spec):
            if not (
                isinstance(selector, list)
                and len(selector) >= 2
                and all(isinstance(s, str) and s for s in selector)
            ):
                found.error(
                    "selector.invalid",
                    f"Node {spec.id}: selector {selector!r} must list at least two names",
                    (*loc, "data", *sel_loc),
                    node_id=spec.id,
                )
        out[spec.id] = replace(spec, default_value=defaults) if defaults else spec
    for key, code in (
        ("environment_variables", "env.invalid"),
        ("conversation_variables", "conversation_var.invalid"),
    ):
        names: set[str] = set()
        for i, var in enumerate(workflow.get(key) or []):
            name = var.get("name") if isinstance(var, Mapping) else None
            if not isinstance(name, str) or not NAME_RE.match(name) or name in names:
                found.error(code, f"Invalid or duplicate variable name {name!r}", ("workflow", key, i))
            else:
                names.add(name)
    return out


def node_selectors(spec: NodeSpec) -> Iterator[tuple[Loc, Any]]:
    """The variable selectors a node's data reads, with their location under ``data``."""
    data = spec.data
    if spec.type == "end":
        for i, item in enumerate(data.get("outputs") or []):
            if isinstance(item, Mapping):
                yield ("outputs", i, "value_selector"), item.get("value_selector")
    elif spec.type in ("template-transform", "code"):
        for i, item in enumerate(data.get("variables") or []):
            if isinstance(item, Mapping):
                yield ("variables", i, "value_selector"), item.get("value_selector")
    elif spec.type in ("variable-aggregator", "variable-assigner"):
        for i, selector in enumerate(data.get("variables") or []):
            yield ("variables", i), selector
    elif spec.type == "if-else":
        cases = data.get("cases")
        if not isinstance(cases, list):
            cases = [{"conditions": data.get("conditions") or []}]
        for c, case in enumerate(cases):
            for i, cond in enumerate(case.get("conditions") or [] if isinstance(case, Mapping) else []):
                if isinstance(cond, Mapping):
                    yield ("cases", c, "conditions", i, "variable_selector"), cond.get("variable_selector")


def _handles(spec: NodeSpec) -> set[str] | None:
    handles: set[str] = {"source"}
    if spec.type == "if-else":
        cases = spec.data.get("cases")
        if isinstance(cases, list):
            handles = {str(c.get("case_id")) for c in cases if isinstance(c, Mapping)} | {"false"}
        else:
            handles = {"true", "false"}
    elif spec.type in BRANCH_TYPES:
        return None  # classes / actions: checked by their own issues
    if spec.error_strategy == "fail-branch":
        handles |= {"source", "fail-branch"}
    return handles


def _check_references(
    app: AppMeta,
    nodes: dict[str, NodeSpec],
    edges: list[EdgeSpec],
    root_id: str,
    workflow: Mapping[str, Any],
    found: Findings,
) -> None:
    env = {v.get("name") for v in workflow.get("environment_variables") or [] if isinstance(v, Mapping)}
    conv = {v.get("name") for v in workflow.get("conversation_variables") or [] if isinstance(v, Mapping)}
    for spec in nodes.values():
        for sel_loc, selector in node_selectors(spec):
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
                    (*_node_loc(spec.id), "data", *sel_loc),
                    node_id=spec.id,
                )
        if spec.type in KNOWN_NOT_AVAILABLE:
            found.warn(
                "node.port_missing",
                f"{KNOWN_NOT_AVAILABLE[spec.type]} is not configured; node {spec.id} will fail when it runs",
                _node_loc(spec.id),
                node_id=spec.id,
            )
    for edge in edges:
        handles = _handles(nodes[edge.source])
        if handles is not None and edge.source_handle not in handles:
            found.warn(
                "edge.handle_unknown",
                f"Edge {edge.id} leaves {edge.source} by handle '{edge.source_handle}', "
                "which it never produces",
                ("workflow", "graph", "edges", edge.id),
                edge_id=edge.id,
            )
    reached = {root_id}
    todo = [root_id]
    succ: dict[str, list[str]] = {}
    for edge in edges:
        succ.setdefault(edge.source, []).append(edge.target)
    while todo:
        for nxt in succ.get(todo.pop(), []):
            if nxt not in reached:
                reached.add(nxt)
                todo.append(nxt)
    for spec in nodes.values():
        if not spec.container_id and spec.id not in reached:
            found.warn(
                "node.unreachable", f"Node {spec.id} can never run", _node_loc(spec.id), node_id=spec.id
            )
    outputs = {n.type for n in nodes.values() if n.type in ("end", "answer")}
    if not outputs:
        found.warn("graph.no_output_node", "Workflow has no end or answer node", ("workflow", "graph"))
    wrong = "answer" if app.mode == "workflow" else "end"
    for spec in nodes.values():
        if spec.type == wrong:
            found.warn(
                "node.mode_mismatch",
                f"Node {spec.id} of type {wrong} does not belong in a {app.mode} app",
                _node_loc(spec.id),
                node_id=spec.id,
            )

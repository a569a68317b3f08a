"""Import stages on the graph's shape: scopes (container owners), root, cycles (§2.2, §2.3)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any

from sluice.engine.findings import Findings
from sluice.engine.graph import CONTAINER_TYPES, EdgeSpec, NodeSpec

START_TYPES = {"iteration-start": "iteration", "loop-start": "loop"}
Loc = tuple[str | int, ...]


def node_loc(node_id: str) -> Loc:
    return ("workflow", "graph", "nodes", node_id)


def owner_candidates(raw: Mapping[str, Any]) -> tuple[str, ...]:
    """Direct owners a node declares: ``data.container_id`` (present, even empty, wins), else
    ``parentId``, else the legacy ``data.iteration_id``/``data.loop_id`` (zero, one or two)."""
    node_id = raw.get("id")
    data = raw.get("data") if isinstance(raw.get("data"), Mapping) else {}
    assert isinstance(data, Mapping)
    if "container_id" in data:
        value = data["container_id"]
        if value is not None and not isinstance(value, str):
            raise TypeError(f"Node {node_id!r} data.container_id must be a string")
        return (value,) if value else ()
    parent = raw.get("parentId")
    if parent is not None:
        if not isinstance(parent, str):
            raise TypeError(f"Node {node_id!r} parentId must be a string")
        if parent:
            return (parent,)
    candidates: list[str] = []
    for key in ("iteration_id", "loop_id"):
        owner = data.get(key)
        if owner is not None and not isinstance(owner, str):
            raise TypeError(f"Node {node_id!r} data.{key} must be a string")
        if owner and owner not in candidates:
            candidates.append(owner)
    return tuple(candidates)


def _reaches(start: str, target: str, owners: Mapping[str, tuple[str, ...]]) -> bool:
    pending, seen = [start], set()
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        for owner in owners.get(current, ()):
            if owner == target:
                return True
            pending.append(owner)
    return False


def _resolve_owner(node_id: str, owners: Mapping[str, tuple[str, ...]]) -> str | None:
    """The direct owner; with two legacy candidates, the one inside the other (``None``: ambiguous)."""
    candidates = owners.get(node_id, ())
    if len(candidates) <= 1:
        return candidates[0] if candidates else ""
    first, second = candidates[0], candidates[1]
    first_inner, second_inner = _reaches(first, second, owners), _reaches(second, first, owners)
    if first_inner != second_inner:
        return first if first_inner else second
    return None


def check_scopes(
    nodes: dict[str, NodeSpec],
    owners: Mapping[str, tuple[str, ...]],
    edges: list[EdgeSpec],
    found: Findings,
) -> tuple[dict[str, NodeSpec], dict[str, list[str]]]:
    resolved: dict[str, str] = {}
    for node_id in nodes:
        owner = _resolve_owner(node_id, owners)
        if owner is None:
            found.error(
                "container.owner_ambiguous",
                f"Node {node_id} has ambiguous legacy container owners; set data.container_id",
                node_loc(node_id),
                node_id=node_id,
            )
        elif owner and owner not in nodes:
            found.error(
                "container.owner_unknown",
                f"Node {node_id} belongs to unknown container '{owner}'",
                node_loc(node_id),
                node_id=node_id,
            )
        elif owner and nodes[owner].type not in CONTAINER_TYPES:
            found.error(
                "container.not_container",
                f"Node {node_id} belongs to '{owner}', which is not an iteration or loop",
                node_loc(node_id),
                node_id=node_id,
            )
        else:
            resolved[node_id] = owner
    if found.errors:
        return nodes, {}
    for node_id in nodes:
        seen = [node_id]
        owner = resolved[node_id]
        while owner:
            if owner in seen:
                found.error(
                    "container.owner_cycle",
                    f"Container ownership cycle: {' → '.join([*seen, owner])}",
                    node_loc(node_id),
                    node_id=node_id,
                )
                break
            seen.append(owner)
            owner = resolved[owner]
    if found.errors:
        return nodes, {}
    nodes = {n: replace(spec, container_id=resolved[n]) if resolved[n] else spec for n, spec in nodes.items()}
    children: dict[str, list[str]] = {n: [] for n, spec in nodes.items() if spec.type in CONTAINER_TYPES}
    for spec in nodes.values():
        if spec.container_id:
            children[spec.container_id].append(spec.id)
    _check_frame_roots(nodes, found)
    for edge in edges:
        if nodes[edge.source].container_id != nodes[edge.target].container_id:
            found.error(
                "edge.crosses_scope",
                f"Edge {edge.id} connects nodes of different containers",
                ("workflow", "graph", "edges", edge.id),
                edge_id=edge.id,
            )
    return nodes, children


def _nearest_loop(spec: NodeSpec, nodes: Mapping[str, NodeSpec]) -> str | None:
    owner = spec.container_id
    while owner:
        if nodes[owner].type == "loop":
            return owner
        owner = nodes[owner].container_id
    return None


def _check_frame_roots(nodes: Mapping[str, NodeSpec], found: Findings) -> None:
    for spec in nodes.values():
        expected = START_TYPES.get(spec.type)
        owner = spec.container_id
        if expected and (not owner or nodes[owner].type != expected):
            found.error(
                "container.start_invalid",
                f"Node {spec.id} of type {spec.type} must be inside a {expected}",
                node_loc(spec.id),
                node_id=spec.id,
            )
        if spec.type == "loop-end" and _nearest_loop(spec, nodes) is None:
            found.error(
                "container.start_invalid",
                f"Node {spec.id} of type loop-end must be inside a loop",
                node_loc(spec.id),
                node_id=spec.id,
            )
        if spec.type in CONTAINER_TYPES:
            start = spec.data.get("start_node_id")
            child = nodes.get(start) if isinstance(start, str) else None
            if child is None or child.container_id != spec.id or child.type != f"{spec.type}-start":
                found.error(
                    "container.start_invalid",
                    f"Container {spec.id} has no valid start_node_id (an owned {spec.type}-start node)",
                    (*node_loc(spec.id), "data", "start_node_id"),
                    node_id=spec.id,
                )


def check_root(nodes: Mapping[str, NodeSpec], found: Findings) -> str | None:
    roots = [n for n in nodes.values() if n.type == "start" and not n.container_id]
    if not roots:
        found.error("graph.no_start", "Workflow has no start node", ("workflow", "graph", "nodes"))
        return None
    if len(roots) > 1:
        found.error(
            "graph.multiple_start",
            f"Workflow has {len(roots)} start nodes; exactly one is required",
            ("workflow", "graph", "nodes"),
        )
        return None
    return roots[0].id


def check_cycles(nodes: Mapping[str, NodeSpec], edges: list[EdgeSpec], found: Findings) -> None:
    succ: dict[str, list[str]] = {n: [] for n in nodes}
    for edge in edges:
        succ[edge.source].append(edge.target)
    state: dict[str, int] = {}
    for root in nodes:
        if state.get(root):
            continue
        stack: list[tuple[str, Iterator[str]]] = [(root, iter(succ[root]))]
        state[root], path = 1, [root]
        while stack:
            node, successors = stack[-1]
            child = next(successors, None)
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

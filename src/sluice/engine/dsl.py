"""``load_dsl``: YAML text → validated ``CompiledGraph`` plus every finding (§1.3, §2).

Validation runs in stages (document → version → app → nodes → edges → scopes → root → cycles →
node schemas → references); each lists all its findings and a stage with errors stops the later
ones, so one file reports every problem a reader can act on without cascades of follow-ons.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from sluice.engine import fastyaml
from sluice.engine.checks import check_node_schemas, check_references, check_variables, declared_types
from sluice.engine.findings import Finding, Findings
from sluice.engine.graph import AppMeta, CompiledGraph, EdgeSpec, NodeSpec, RetryConfig
from sluice.engine.nodes.registry import IMPLEMENTED, KNOWN_NOT_AVAILABLE, UNSUPPORTED, build
from sluice.engine.scopes import check_cycles, check_root, check_scopes, owner_candidates

MAX_BYTES = 10 * 1024 * 1024
NEWEST = (0, 7)
VERSION_RE = re.compile(r"^\d+\.\d+\.\d+$")
APP_MODES = ("workflow", "advanced-chat")
MODEL_NODES = frozenset({"llm", "question-classifier", "parameter-extractor"})
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True, slots=True)
class ImportResult:
    status: str  # completed | completed-with-warnings | failed
    graph: CompiledGraph | None
    findings: tuple[Finding, ...]
    document: Mapping[str, Any] | None = None

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "error"]


def _result(found: Findings, graph: CompiledGraph | None, doc: Mapping[str, Any] | None) -> ImportResult:
    if found.errors:
        status = "failed"
        graph = None
    elif found.items:
        status = "completed-with-warnings"
    else:
        status = "completed"
    return ImportResult(status, graph, tuple(found.items), doc)


def _parse_yaml(text: str | bytes, found: Findings) -> dict[str, Any] | None:
    if len(text) > MAX_BYTES:
        found.error("dsl.too_large", "DSL document exceeds 10 MB")
        return None
    doc = _fast_parse(text)
    try:
        if doc is fastyaml.NOT_SIMPLE:
            doc = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        found.error("dsl.yaml_invalid", f"Invalid YAML{where}: {problem}")
        return None
    if not isinstance(doc, dict):
        found.error("dsl.yaml_invalid", "DSL document must be a YAML mapping")
        return None
    return doc


def _fast_parse(text: str | bytes) -> Any:
    """JSON, or the block-YAML subset exporters write, without PyYAML's slow object building."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            return fastyaml.NOT_SIMPLE
    head = text.lstrip()[:1]
    if head == "{":
        try:
            return json.loads(text)
        except ValueError:
            return fastyaml.NOT_SIMPLE
    return fastyaml.load(text)


def _check_version(doc: dict[str, Any], allow_newer: bool, found: Findings) -> str:
    raw = doc.get("version", "0.1.0")
    if not isinstance(raw, str):
        found.error(
            "dsl.version_invalid",
            f"Invalid version type, expected str, got {type(raw).__name__}",
            ("version",),
        )
        return ""
    if not VERSION_RE.match(raw):
        found.error("dsl.version_invalid", f"Invalid DSL version '{raw}'", ("version",))
        return raw
    major, minor, _ = (int(p) for p in raw.split("."))
    if (major, minor) < (0, 6):
        found.warn(
            "dsl.version_old", f"DSL version {raw} is older than 0.6.0; it is imported as is", ("version",)
        )
    elif major >= 1 or (major, minor) > NEWEST:
        if allow_newer:
            found.warn(
                "dsl.version_newer",
                f"DSL version {raw} is newer than 0.7.x; imported on request",
                ("version",),
            )
        else:
            found.error(
                "dsl.version_unsupported",
                f"DSL version {raw} is newer than the newest supported version 0.7.x",
                ("version",),
            )
    return raw


def _check_app(doc: dict[str, Any], found: Findings) -> AppMeta | None:
    if doc.get("kind") != "app":
        found.warn("dsl.kind_coerced", "Document kind is not 'app'; it is imported as an app", ("kind",))
    app = doc.get("app")
    if not isinstance(app, dict):
        found.error("app.missing", "Missing app data in the DSL", ("app",))
        return None
    mode = app.get("mode")
    if mode not in APP_MODES:
        found.error(
            "app.mode_unsupported",
            f"App mode '{mode}' cannot be imported: only workflow and advanced-chat apps are supported",
            ("app", "mode"),
        )
        return None
    if not isinstance(doc.get("workflow"), dict):
        found.error("workflow.missing", "Missing workflow data in the DSL", ("workflow",))
        return None
    return AppMeta(
        name=str(app.get("name") or ""),
        mode=str(mode),
        description=str(app.get("description") or ""),
        icon=app.get("icon"),
        icon_type=app.get("icon_type"),
        icon_background=app.get("icon_background"),
        use_icon_as_answer_icon=bool(app.get("use_icon_as_answer_icon", False)),
    )


def _retry(data: Mapping[str, Any]) -> RetryConfig:
    raw = data.get("retry_config") or {}
    if not isinstance(raw, Mapping):
        return RetryConfig()
    try:
        return RetryConfig(
            enabled=bool(raw.get("retry_enabled", False)),
            max_retries=int(raw.get("max_retries") or 0),
            interval_ms=int(raw.get("retry_interval") or 0),
        )
    except (TypeError, ValueError):
        return RetryConfig()


def _cut_provider(data: dict[str, Any]) -> dict[str, Any]:
    """``model.provider`` is cut to its last path segment (``langgenius/openai/openai``)."""
    model = data.get("model")
    if isinstance(model, Mapping) and isinstance(model.get("provider"), str) and "/" in model["provider"]:
        data = {**data, "model": {**model, "provider": model["provider"].rsplit("/", 1)[-1]}}
    return data


def _node_specs(
    raw_nodes: list[Any], found: Findings
) -> tuple[dict[str, NodeSpec], dict[str, tuple[str, ...]]]:
    specs: dict[str, NodeSpec] = {}
    owners: dict[str, tuple[str, ...]] = {}
    for i, raw in enumerate(raw_nodes):
        loc: tuple[str | int, ...] = ("workflow", "graph", "nodes", i)
        if not isinstance(raw, dict) or not isinstance(raw.get("data"), dict):
            found.error("node.invalid", "Node and its data must be mappings", loc)
            continue
        node_id, data = raw.get("id"), raw["data"]
        if not isinstance(node_id, str) or not node_id:
            found.error("node.id_invalid", "Node id must be a non-empty string", (*loc, "id"))
            continue
        if node_id in specs:
            found.error("node.id_duplicate", f"Duplicate node id '{node_id}'", (*loc, "id"), node_id=node_id)
            continue
        node_type = data.get("type")
        if not isinstance(node_type, str) or not node_type:
            found.error(
                "node.type_missing", f"Node {node_id} has no type", (*loc, "data", "type"), node_id=node_id
            )
            continue
        if node_type in UNSUPPORTED:
            found.error(
                "node.type_unsupported",
                f"Node type '{node_type}' is not supported (node {node_id})",
                (*loc, "data", "type"),
                node_id=node_id,
            )
            continue
        if node_type not in IMPLEMENTED and node_type not in KNOWN_NOT_AVAILABLE:
            found.error(
                "node.type_unknown",
                f"Unknown node type '{node_type}' (node {node_id})",
                (*loc, "data", "type"),
                node_id=node_id,
            )
            continue
        version = str(data.get("version") or "1")
        if node_type == "assigner" and version not in ("1", "2"):
            found.error(
                "node.version_unsupported",
                f"Node version '{version}' of type assigner is not supported (node {node_id})",
                (*loc, "data", "version"),
                node_id=node_id,
            )
            continue
        try:
            owners[node_id] = owner_candidates(raw)
        except TypeError as exc:
            found.error("container.owner_unknown", str(exc), loc, node_id=node_id)
            continue
        if node_type in MODEL_NODES:
            data = _cut_provider(data)
        specs[node_id] = NodeSpec(
            id=node_id,
            type=node_type,
            title=str(data.get("title") or ""),
            version=version,
            data=data,
            error_strategy=data.get("error_strategy") or None,
            retry=_retry(data),
        )
    return specs, owners


def _edge_specs(raw_edges: list[Any], nodes: dict[str, NodeSpec], found: Findings) -> list[EdgeSpec]:
    edges: list[EdgeSpec] = []
    taken: set[str] = {e["id"] for e in raw_edges if isinstance(e, dict) and isinstance(e.get("id"), str)}
    seen: set[str] = set()
    for i, raw in enumerate(raw_edges):
        loc: tuple[str | int, ...] = ("workflow", "graph", "edges", i)
        if not isinstance(raw, dict):
            found.error("edge.invalid", "Edge must be a mapping", loc)
            continue
        source, target = raw.get("source"), raw.get("target")
        handle = raw.get("sourceHandle")
        handle = "source" if handle is None else handle
        edge_id = raw.get("id")
        if edge_id is None:
            edge_id = f"edge_{i}"
            while edge_id in taken:
                edge_id += "_"
            taken.add(edge_id)
        if not all(isinstance(v, str) for v in (source, target, handle)) or not isinstance(edge_id, str):
            found.error("edge.invalid", "Edge source, target and handle must be strings", loc)
            continue
        if not edge_id:
            found.error("edge.invalid", "Edge id must not be empty", (*loc, "id"))
            continue
        if edge_id in seen:
            found.error("edge.id_duplicate", f"Duplicate edge id '{edge_id}'", (*loc, "id"), edge_id=edge_id)
            continue
        seen.add(edge_id)
        dangling = False
        for end, name in (("source", source), ("target", target)):
            if name not in nodes:
                dangling = True
                found.error(
                    "edge.dangling",
                    f"Edge {edge_id} references unknown node '{name}'",
                    (*loc, end),
                    edge_id=edge_id,
                )
        if dangling:
            continue
        if handle == "__timeout__" and nodes[str(source)].type == "human-input":
            handle = "__timeout"
            found.warn(
                "human_input.timeout_handle_renamed",
                f"Edge {edge_id} leaves by '__timeout__', read as '__timeout'",
                (*loc, "sourceHandle"),
                edge_id=edge_id,
            )
        edges.append(EdgeSpec(edge_id, str(source), str(target), str(handle)))
    return edges


def load_dsl(
    text: str | bytes, *, allow_newer: bool = False, available: Collection[str] | None = None
) -> ImportResult:
    """Parse and validate a DSL document.

    ``available`` names the configured capabilities (``code``, ``http``, ``files``,
    ``human_input``, ``models``); with it, implemented nodes whose capability is missing import
    with ``node.port_missing``. Tool nodes, which this build cannot run, always warn."""
    found = Findings()
    doc = _parse_yaml(text, found)
    if doc is None:
        return _result(found, None, None)
    version = _check_version(doc, allow_newer, found)
    if found.errors:
        return _result(found, None, doc)
    app = _check_app(doc, found)
    if app is None or found.errors:
        return _result(found, None, doc)
    workflow = doc["workflow"]
    graph_raw = workflow.get("graph") if isinstance(workflow.get("graph"), dict) else {}
    raw_nodes = [
        n
        for n in (graph_raw.get("nodes") or [])
        if not (isinstance(n, dict) and n.get("type") == "custom-note")
    ]
    if not raw_nodes:
        found.error("graph.empty", "Graph must have at least one node", ("workflow", "graph", "nodes"))
        return _result(found, None, doc)
    nodes, owners = _node_specs(raw_nodes, found)
    if found.errors:
        return _result(found, None, doc)
    edges = _edge_specs(list(graph_raw.get("edges") or []), nodes, found)
    if found.errors:
        return _result(found, None, doc)
    nodes, children = check_scopes(nodes, owners, edges, found)
    if found.errors:
        return _result(found, None, doc)
    root_id = check_root(nodes, found)
    if root_id is None or found.errors:
        return _result(found, None, doc)
    check_cycles(nodes, edges, found)
    if found.errors:
        return _result(found, None, doc)
    nodes = check_node_schemas(nodes, found)
    check_variables(workflow, found)
    if found.errors:
        return _result(found, None, doc)
    check_references(app, nodes, edges, root_id, children, workflow, available, found)
    return _result(found, _compile(version, app, nodes, edges, root_id, children, workflow, raw_nodes), doc)


def _compile(
    version: str,
    app: AppMeta,
    nodes: dict[str, NodeSpec],
    edges: list[EdgeSpec],
    root_id: str,
    children: dict[str, list[str]],
    workflow: Mapping[str, Any],
    raw_nodes: list[Any],
) -> CompiledGraph:
    out_edges: dict[str, list[EdgeSpec]] = {n: [] for n in nodes}
    in_edges: dict[str, list[EdgeSpec]] = {n: [] for n in nodes}
    for edge in edges:
        out_edges[edge.source].append(edge)
        in_edges[edge.target].append(edge)
    descendants: dict[str, frozenset[str]] = {}

    def below(container: str) -> frozenset[str]:
        if container not in descendants:
            found: set[str] = set()
            for child in children.get(container, []):
                found.add(child)
                found |= below(child)
            descendants[container] = frozenset(found)
        return descendants[container]

    for container in children:
        below(container)
    env = tuple(v for v in workflow.get("environment_variables") or () if isinstance(v, Mapping))
    conv = tuple(v for v in workflow.get("conversation_variables") or () if isinstance(v, Mapping))
    return CompiledGraph(
        version=version,
        app=app,
        nodes=nodes,
        edges=tuple(edges),
        out_edges={k: tuple(v) for k, v in out_edges.items()},
        in_edges={k: tuple(v) for k, v in in_edges.items()},
        root_id=root_id,
        runners={node_id: build(spec.type)(spec) for node_id, spec in nodes.items()},
        environment_variables=env,
        conversation_variables=conv,
        features=workflow.get("features") or {},
        fingerprint_source={
            "nodes": raw_nodes,
            "edges": [(e.id, e.source, e.target, e.source_handle) for e in edges],
        },
        children={k: tuple(v) for k, v in children.items()},
        descendants=descendants,
        declared_types=declared_types(nodes, conv),
    )

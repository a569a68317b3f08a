"""The variable pool: ``namespace -> name -> value`` (§3.1).

Values are never mutated in place: every write replaces the value under its name. That lets a
child frame start from a copy of its parent's namespaces that shares the values themselves,
with the isolation of a deep copy at the cost of copying a few small dicts.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sluice.engine.values import ABSENT, is_file

FILE_ATTRIBUTES = frozenset(
    {"type", "size", "name", "mime_type", "transfer_method", "url", "extension", "related_id"}
)


class VariablePool:
    __slots__ = ("_data",)

    def __init__(self, data: dict[str, dict[str, Any]] | None = None) -> None:
        self._data: dict[str, dict[str, Any]] = data if data is not None else {}

    def get(self, selector: Sequence[str]) -> Any:
        """The value at ``[ns, name, *path]`` or ``ABSENT``; paths walk mapping keys only."""
        if len(selector) < 2:
            return ABSENT
        scope = self._data.get(selector[0])
        if scope is None:
            return ABSENT
        value = scope.get(selector[1], ABSENT)
        for step in selector[2:]:
            if value is ABSENT:
                return ABSENT
            if is_file(value) and step in FILE_ATTRIBUTES:
                value = value.get("filename") if step == "name" else value.get(step)
            elif isinstance(value, dict):
                value = value.get(step, ABSENT)
            else:
                return ABSENT
        return value

    def has(self, selector: Sequence[str]) -> bool:
        return self.get(selector) is not ABSENT

    def set(self, namespace: str, name: str, value: Any) -> None:
        scope = self._data.get(namespace)
        if scope is None:
            scope = self._data[namespace] = {}
        scope[name] = value

    def set_outputs(self, node_id: str, outputs: Mapping[str, Any]) -> None:
        scope = self._data.get(node_id)
        if scope is None:
            scope = self._data[node_id] = {}
        scope.update(outputs)

    def namespace(self, namespace: str) -> Mapping[str, Any]:
        return self._data.get(namespace, {})

    def namespaces(self) -> Iterable[str]:
        return self._data.keys()

    def snapshot(self) -> dict[str, dict[str, Any]]:
        return {ns: dict(values) for ns, values in self._data.items()}

    def child_copy(self, drop: Iterable[str] = ()) -> VariablePool:
        """An isolated pool for a child frame (values shared, see the module note)."""
        dropped = set(drop)
        return VariablePool({ns: dict(values) for ns, values in self._data.items() if ns not in dropped})

    def deep_copy(self, drop: Iterable[str] = ()) -> VariablePool:
        dropped = set(drop)
        return VariablePool(
            {ns: copy.deepcopy(values) for ns, values in self._data.items() if ns not in dropped}
        )

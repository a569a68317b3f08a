"""Import validation of the human-input node (human-input.md §1.6, scenarios 1–2)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from sluice.engine import load_dsl
from tests.human_input.harness import FIXTURES


def review(mutate: Any = None) -> str:
    doc = yaml.safe_load((FIXTURES / "review.yml").read_text())
    node = next(n for n in doc["workflow"]["graph"]["nodes"] if n["id"] == "review")
    if mutate is not None:
        mutate(node["data"], doc)
    return yaml.safe_dump(doc)


def errors(text: str) -> list[str]:
    return [f.message for f in load_dsl(text).findings if f.level == "error"]


def test_the_fixture_imports_and_timeout_spelling_is_normalised() -> None:
    def legacy(data: dict[str, Any], doc: dict[str, Any]) -> None:
        for edge in doc["workflow"]["graph"]["edges"]:
            if edge.get("sourceHandle") == "__timeout":
                edge["sourceHandle"] = "__timeout__"
        data.pop("timeout")

    result = load_dsl(review(legacy))
    assert result.graph is not None, [f.message for f in result.findings]
    assert "human_input.timeout_handle_renamed" in {f.code for f in result.findings}


CASES = {
    "duplicate action": (
        lambda d, _: d["user_actions"].append(dict(d["user_actions"][0])),
        "duplicate_action_id",
    ),
    "action __timeout": (lambda d, _: d["user_actions"].append({"id": "__timeout"}), "invalid_action"),
    "21-char id": (lambda d, _: d["user_actions"].append({"id": "a" * 21}), "invalid_action"),
    "duplicate output": (
        lambda d, _: d["inputs"].append(copy.deepcopy(d["inputs"][0])),
        "duplicate_output_variable_name",
    ),
    "custom without extensions": (
        lambda d, _: d["inputs"].append(
            {"type": "file", "output_variable_name": "doc", "allowed_file_types": ["custom"]}
        ),
        "invalid_input",
    ),
    "no enabled delivery": (
        lambda d, _: d.update(delivery_methods=[{"type": "webapp", "enabled": False}]),
        "no_delivery_method",
    ),
    "no actions": (lambda d, _: d.update(user_actions=[]), "no_user_action"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_import_rejects(case: str) -> None:
    mutate, rule = CASES[case]
    found = errors(review(mutate))
    assert any(rule in message for message in found), found

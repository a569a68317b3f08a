"""`sluice apps import` / `sluice keys create`: stable outputs and every DSL validation error code."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from sluice.cli.main import app

FIXTURES = Path(__file__).parent.parent / "fixtures"

BASE = """
version: "0.6.0"
kind: app
app: {name: x, mode: workflow}
workflow:
  graph:
    nodes:
      - {id: start, data: {type: start, title: S, variables: []}}
      - {id: end, data: {type: end, title: E, outputs: []}}
    edges:
      - {id: e1, source: start, target: end}
"""


def variant(old: str, new: str) -> str:
    assert old in BASE
    return BASE.replace(old, new)


BAD_DSL = {
    "dsl.yaml_invalid": "version: [unclosed",
    "dsl.version_invalid": variant('version: "0.6.0"', "version: 0.6"),
    "dsl.version_unsupported": variant('version: "0.6.0"', 'version: "9.0.0"'),
    "app.missing": variant("app: {name: x, mode: workflow}", ""),
    "app.mode_unsupported": variant("mode: workflow", "mode: chat"),
    "workflow.missing": 'version: "0.6.0"\nkind: app\napp: {name: x, mode: workflow}\n',
    "graph.empty": variant(
        "    nodes:\n      - {id: start, data: {type: start, title: S, variables: []}}\n"
        "      - {id: end, data: {type: end, title: E, outputs: []}}\n    edges:\n"
        "      - {id: e1, source: start, target: end}\n",
        "    nodes: []\n",
    ),
    "node.type_unknown": variant("type: end, title: E, outputs: []", "type: magic, title: E"),
    "node.type_unsupported": variant(
        "type: end, title: E, outputs: []", "type: knowledge-retrieval, title: E"
    ),
    "node.id_duplicate": variant("{id: end,", "{id: start,"),
    "edge.dangling": variant("target: end}", "target: ghost}"),
    "graph.no_start": variant("type: start, title: S, variables: []", "type: end, title: S, outputs: []"),
    "graph.multiple_start": variant(
        "type: end, title: E, outputs: []", "type: start, title: E, variables: []"
    ),
    "graph.cycle": variant(
        "      - {id: e1, source: start, target: end}\n",
        "      - {id: e1, source: start, target: end}\n      - {id: e2, source: end, target: start}\n",
    ),
    "selector.invalid": variant("outputs: []", "outputs: [{variable: a, value_selector: [x]}]"),
}


@pytest.mark.parametrize("code", sorted(BAD_DSL))
def test_invalid_dsl_is_refused_with_its_code(
    code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLUICE_DATA_DIR", str(tmp_path / "data"))
    path = tmp_path / "bad.yml"
    path.write_text(BAD_DSL[code])
    runner = CliRunner()
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    result = runner.invoke(app, ["apps", "import", str(path)])
    assert result.exit_code == 1, result.output
    assert code in result.stderr
    assert result.stdout == ""


def test_import_prints_app_id_and_key_last(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLUICE_DATA_DIR", str(tmp_path / "data"))
    runner = CliRunner()
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    imported = runner.invoke(app, ["apps", "import", str(FIXTURES / "app_a.yml")])
    assert imported.exit_code == 0, imported.output
    app_id = imported.stdout.strip().splitlines()[-1]
    assert len(app_id) == 36
    created = runner.invoke(app, ["keys", "create", app_id])
    assert created.exit_code == 0
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("app-") and len(key) == 28 and key[4:].isalnum()
    unknown = runner.invoke(app, ["keys", "create", "00000000-0000-0000-0000-000000000000"])
    assert unknown.exit_code == 1

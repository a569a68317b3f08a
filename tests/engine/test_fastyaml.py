"""The fast block-YAML path gives exactly what ``yaml.safe_load`` gives, or steps aside."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import yaml

from sluice.engine import fastyaml

ROOT = Path(__file__).parent.parent.parent
SCALARS: list[Any] = [
    "a", "yes", "no", "1", 1, 1.5, "1.5", None, True, "", "0.6.0", "x: y", "- z", "a'b", 'q"q', "#c",
    "2001-12-14", "0o17", "1_000", "~", "null", "é ü", "line\nbreak", "a" * 100 + " b" * 30, ":", "-", "[x]",
]  # fmt: skip


def value(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if depth > 3 or roll < 0.4:
        return rng.choice(SCALARS)
    if roll < 0.7:
        return [value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    keys = ["k", "id", "1", "yes", "a b", "x-y", "é"]
    return {
        rng.choice(keys) + str(rng.randint(0, 3)): value(rng, depth + 1) for _ in range(rng.randint(0, 4))
    }


def test_the_repository_dsl_files_parse_like_pyyaml() -> None:
    paths = [
        *ROOT.glob("tests/golden/*.yml"),
        *ROOT.glob("tests/fixtures/*.yml"),
        *ROOT.glob("bench/dsl/*.yml"),
    ]
    fast = 0
    for path in paths:
        text = path.read_text()
        parsed = fastyaml.load(text)
        if parsed is not fastyaml.NOT_SIMPLE:
            fast += 1
            assert parsed == yaml.safe_load(text), path.name
    assert fast >= 15


def test_random_documents_parse_like_pyyaml_or_fall_back() -> None:
    rng = random.Random(7)
    fast = 0
    for _ in range(800):
        doc = {"root": value(rng)}
        for options in ({}, {"allow_unicode": True}, {"sort_keys": False, "allow_unicode": True}):
            text = yaml.safe_dump(doc, **options)
            parsed = fastyaml.load(text)
            if parsed is not fastyaml.NOT_SIMPLE:
                fast += 1
                assert parsed == yaml.safe_load(text), text
    assert fast > 1000


def test_outside_the_subset_it_steps_aside() -> None:
    for text in (
        "a: &x 1\nb: *x\n",
        "a: [1, 2]\n",
        "a: |\n  text\n",
        "# c\na: 1\n",
        "a: !!str 1\n",
        "a:\tb\n",
    ):
        assert fastyaml.load(text) is fastyaml.NOT_SIMPLE, text

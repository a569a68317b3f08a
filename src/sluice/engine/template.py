"""``{{#ns.name#}}`` references (§3.3) and the sandboxed Jinja2 renderer (§3.4)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2.sandbox import SandboxedEnvironment

from sluice.engine.pool import VariablePool
from sluice.engine.values import ABSENT, render_markdown, render_text

REFERENCE = re.compile(r"\{\{#([A-Za-z0-9_]{1,50}(?:\.[A-Za-z_][A-Za-z0-9_]{0,29}){1,10})#\}\}")


@dataclass(frozen=True, slots=True)
class Part:
    """A piece of a parsed template: literal text, or a selector whose value fills it if present."""

    text: str
    selector: tuple[str, ...] | None


@lru_cache(maxsize=4096)
def parse(template: str) -> tuple[Part, ...]:
    """Split on references. As in Dify, *any* piece with a dot is tried as a selector (Q1)."""
    parts: list[Part] = []
    for piece in REFERENCE.split(template):
        if not piece:
            continue
        selector = tuple(piece.split(".")) if "." in piece else None
        parts.append(Part(piece, selector))
    return tuple(parts)


def selectors(template: str) -> list[tuple[str, ...]]:
    """The selectors a template references explicitly (inside ``{{#…#}}``)."""
    return [tuple(m.split(".")) for m in REFERENCE.findall(template)]


def render(template: str, pool: VariablePool, *, markdown: bool = False) -> str:
    to_text = render_markdown if markdown else render_text
    out: list[str] = []
    for part in parse(template):
        if part.selector is not None:
            value = pool.get(part.selector)
            if value is not ABSENT:
                out.append(to_text(value))
                continue
        out.append(part.text)
    return "".join(out)


def resolver(pool: VariablePool) -> Callable[[str], str]:
    return lambda text: render(text, pool)


_JINJA = SandboxedEnvironment()


@lru_cache(maxsize=512)
def _compiled(template: str) -> Any:
    return _JINJA.from_string(template)


def render_jinja(template: str, variables: Mapping[str, Any]) -> str:
    """Render in the Jinja2 sandbox; undefined names render as ``""`` (Q15)."""
    return str(_compiled(template).render(**variables))


class ThreadedJinjaRenderer:
    """The default ``TemplateRenderer``: the Jinja2 sandbox in a worker thread, bounded in time."""

    async def render(self, template: str, variables: Mapping[str, Any], timeout_s: float) -> str:
        return await asyncio.wait_for(asyncio.to_thread(render_jinja, template, variables), timeout_s)


class InlineJinjaRenderer:
    """Renders on the event loop: deterministic under a virtual clock (tests, benchmarks)."""

    async def render(self, template: str, variables: Mapping[str, Any], timeout_s: float) -> str:
        return render_jinja(template, variables)

"""Event log offsets: ``"<ms>-<seq>"`` Redis Stream ids, compared as integer pairs."""

from __future__ import annotations

import re

_OFFSET = re.compile(r"^(\d{1,20})-(\d{1,20})$")
U64 = (1 << 64) - 1
ZERO = "0-0"

Position = tuple[int, int]


def parse(offset: str) -> Position:
    """An offset as an integer pair; ``ValueError`` unless both parts are unsigned 64-bit."""
    match = _OFFSET.match(offset)
    if match is None or int(match[1]) > U64 or int(match[2]) > U64:
        raise ValueError(f"invalid event log offset: {offset!r}")
    return int(match[1]), int(match[2])


def pos(offset: str) -> Position:
    """A trusted offset (read from the log) as an integer pair, without validation (hot path)."""
    ms, _, seq = offset.partition("-")
    return int(ms), int(seq)


def valid(offset: str) -> bool:
    try:
        parse(offset)
    except ValueError:
        return False
    return True


def before(offset: str) -> str:
    """The offset just below ``offset`` (reading after it returns ``offset`` first)."""
    ms, seq = parse(offset)
    if seq:
        return f"{ms}-{seq - 1}"
    return f"{ms - 1}-{U64}" if ms else ZERO


def continuous(prev: str, position: str) -> bool:
    """Whether an incarnation starting after ``prev`` may follow ``position`` without a gap (§2.2)."""
    return prev != "?" and parse(prev) <= parse(position)

"""A strict, line-based SSE parser (the way Dify clients read streams)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass
class Frame:
    event: str | None = None
    id: str | None = None
    retry: int | None = None
    data: Any = None


def parse_sse(text: str) -> list[Frame]:
    frames: list[Frame] = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        frame = Frame()
        for line in block.split("\n"):
            field, _, value = line.partition(": ")
            if field == "event":
                frame.event = value
            elif field == "id":
                frame.id = value
            elif field == "retry":
                frame.retry = int(value)
            elif field == "data":
                frame.data = json.loads(value)
        frames.append(frame)
    return frames

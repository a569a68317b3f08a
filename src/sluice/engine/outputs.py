"""Run outputs (§5.4) and the limit sentence (§5.10)."""

from __future__ import annotations

from typing import Any


def merge_outputs(target: dict[str, Any], node_type: str, outputs: dict[str, Any]) -> None:
    """Run outputs (§5.4): an answer is appended to an earlier answer; other keys overwrite."""
    if node_type == "answer":
        target["answer"] = str(target.get("answer", "")) + str(outputs.get("answer", ""))
        target["files"] = [*target.get("files", []), *(outputs.get("files") or [])]
    else:
        target.update(outputs)


def merge_frame_outputs(target: dict[str, Any], outputs: dict[str, Any]) -> None:
    """A finished child frame's response outputs joining its parent's (Q23)."""
    for key, value in outputs.items():
        if key == "answer" and "answer" in target:
            target["answer"] = str(target["answer"]) + str(value)
        elif key == "files" and "files" in target and isinstance(value, list):
            target["files"] = [*target["files"], *value]
        else:
            target[key] = value


def time_limit_reason(elapsed: float, limit: float) -> str:
    return f"Aborted: Maximum execution time exceeded: {elapsed:.2f}s > {limit:g}s"

"""A fast path for the block YAML that DSL exporters write (PyYAML's ``dump`` style).

PyYAML builds its objects in Python even with the C scanner, which costs milliseconds for a
50-node workflow. Exports use a small subset: block mappings and sequences (also PyYAML's
indentless sequences), one-line plain or quoted scalars, and ``[]``/``{}``. This module parses
exactly that subset, resolving plain scalars with PyYAML's own resolver and constructors so the
result equals ``yaml.safe_load``. On anything outside the subset (anchors, tags, flow
collections, block or multi-line scalars, comments, escapes) it returns ``NOT_SIMPLE`` and the
caller uses PyYAML.
"""

from __future__ import annotations

import re
from typing import Any, Final

import yaml

NOT_SIMPLE: Final = object()
_RESOLVERS = yaml.resolver.Resolver.yaml_implicit_resolvers
_CONSTRUCTOR = yaml.constructor.SafeConstructor()
_STR = "tag:yaml.org,2002:str"
_BAD_START = frozenset("&*!|>%@`{[?#,")


class _Bail(Exception):
    pass


_CACHE: dict[str, Any] = {}
_MISS: Final = object()


def _plain(text: str) -> Any:
    """A plain scalar as PyYAML resolves it (scalars repeat a lot: cached, values are immutable)."""
    try:
        return _CACHE[text]
    except KeyError:
        pass
    value = _resolve_plain(text)
    if len(_CACHE) > 20_000:
        _CACHE.clear()
    _CACHE[text] = value
    return value


def _resolve_plain(text: str) -> Any:
    if not text or text[0] in _BAD_START or " #" in text or text.endswith(":") or ": " in text:
        raise _Bail
    if text[0] == "-" and (len(text) == 1 or text[1] == " "):
        raise _Bail
    for tag, pattern in _RESOLVERS.get(text[0], ()):
        if pattern.match(text):
            if tag == _STR:
                return text
            return _CONSTRUCTOR.yaml_constructors[tag](_CONSTRUCTOR, yaml.ScalarNode(tag, text))
    return text


def _scalar(text: str) -> Any:
    if text == "[]":
        return []
    if text == "{}":
        return {}
    if text[0] == "'":
        if len(text) < 2 or text[-1] != "'":
            raise _Bail
        body = text[1:-1]
        if "'" in body.replace("''", ""):
            raise _Bail
        return body.replace("''", "'")
    if text[0] == '"':
        body = text[1:-1]
        if len(text) < 2 or text[-1] != '"' or "\\" in body or '"' in body:
            raise _Bail
        return body
    return _plain(text)


def _key(content: str) -> tuple[Any, str] | None:
    """``key: rest`` → ``(key, rest)``; ``None`` if the line is no mapping entry."""
    if content[0] in "'\"":
        quote = content[0]
        end = content.find(quote, 1)
        while quote == "'" and end != -1 and content[end + 1 : end + 2] == "'":
            end = content.find(quote, end + 2)
        if end == -1 or content[end + 1 : end + 2] != ":":
            raise _Bail
        after = content[end + 2 :]
        if after and after[0] != " ":
            raise _Bail
        return _scalar(content[: end + 1]), after.strip()
    if content.endswith(":"):
        return _plain(content[:-1]), ""
    head, sep, rest = content.partition(": ")
    if not sep:
        return None
    return _plain(head), rest.strip()


_LINES = re.compile(r"^( *)(\S[^\n]*?)[ ]*$", re.M)
_UNSUPPORTED = re.compile(r"^[ ]*(?:#|---|\.\.\.)", re.M)


def _is_item(content: str) -> bool:
    return content == "-" or content[:2] == "- "


class _Parser:
    def __init__(self, text: str) -> None:
        self.lines: list[tuple[int, str]] = [(len(i), c) for i, c in _LINES.findall(text)]
        self.i = 0

    def node(self, indent: int) -> Any:
        own, content = self.lines[self.i]
        if own != indent:
            raise _Bail
        if _is_item(content):
            return self.sequence(indent)
        return self.mapping(indent)

    def nested(self, indent: int, in_mapping: bool) -> Any:
        """The block under ``key:`` or ``-`` at ``indent`` (``None`` when there is none)."""
        lines = self.lines
        if self.i >= len(lines):
            return None
        below, content = lines[self.i]
        if below > indent:
            return self.node(below)
        if in_mapping and below == indent and _is_item(content):
            return self.sequence(indent)  # PyYAML's indentless sequence
        return None

    def mapping(self, indent: int) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        lines = self.lines
        count = len(lines)
        while self.i < count:
            own, content = lines[self.i]
            if own != indent:
                if own < indent:
                    break
                raise _Bail
            first = content[0]
            if first == "-" and (content == "-" or content[1] == " "):
                break
            if first == "'" or first == '"':
                entry = _key(content)
                if entry is None:
                    raise _Bail
                key, rest = entry
            else:
                head, sep, rest = content.partition(": ")
                if sep:
                    key = _CACHE.get(head, _MISS)
                    if key is _MISS:
                        key = _plain(head)
                elif content[-1] == ":":
                    key, rest = _plain(content[:-1]), ""
                else:
                    raise _Bail
            self.i += 1
            if rest:
                if self.i < count and lines[self.i][0] > indent:
                    raise _Bail  # a multi-line scalar
                value = _CACHE.get(rest, _MISS)
                out[key] = _scalar(rest) if value is _MISS else value
            else:
                out[key] = self.nested(indent, True)
        return out

    def sequence(self, indent: int) -> list[Any]:
        out: list[Any] = []
        lines = self.lines
        count = len(lines)
        while self.i < count:
            own, content = lines[self.i]
            if own != indent or not _is_item(content):
                if own > indent:
                    raise _Bail
                break
            rest = content[2:].lstrip() if content != "-" else ""
            if rest and (_is_item(rest) or ": " in rest or rest[-1] == ":"):
                inner = indent + len(content) - len(rest)
                lines[self.i] = (inner, rest)  # the item's block starts on this line
                out.append(self.node(inner))
                continue
            self.i += 1
            if rest:
                if self.i < count and lines[self.i][0] > indent:
                    raise _Bail
                value = _CACHE.get(rest, _MISS)
                out.append(_scalar(rest) if value is _MISS else value)
            else:
                out.append(self.nested(indent, False))
        return out


def load(text: str) -> Any:
    """The document, or ``NOT_SIMPLE`` when it is not in the subset."""
    if "\r" in text or "\t" in text or _UNSUPPORTED.search(text):
        return NOT_SIMPLE
    try:
        parser = _Parser(text)
        if not parser.lines:
            return NOT_SIMPLE
        value = parser.node(parser.lines[0][0])
        if parser.i != len(parser.lines):
            return NOT_SIMPLE
    except (_Bail, yaml.YAMLError, ValueError, IndexError, KeyError, TypeError):
        return NOT_SIMPLE
    return value

"""Request bodies and response reading for http-request (§4.5), kept apart from the node.

The node encodes bodies itself (stdlib only), so the bytes sent and the logged request agree,
multipart boundary included.
"""

from __future__ import annotations

import json
import mimetypes
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.message import Message
from typing import Any
from urllib.parse import urlencode

from sluice.engine.ports import HttpResponse

BODY_CONTENT_TYPES = {
    "json": "application/json",
    "x-www-form-urlencoded": "application/x-www-form-urlencoded",
    "form-data": "multipart/form-data",
    "raw-text": "text/plain",
}
_BINARY_MAIN_TYPES = frozenset({"application", "image", "audio", "video"})
_TEXT_APPLICATION_TYPES = ("json", "xml", "javascript", "x-www-form-urlencoded", "yaml", "graphql")
_TEXT_MARKERS = (b"{", b"[", b"<", b"function", b"var ", b"const ", b"let ")
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")


@dataclass(slots=True)
class BodyItem:
    """One body item with its templates resolved: the real text and the log (masked) text."""

    key: str
    log_key: str
    value: str
    log_value: str
    files: list[dict[str, Any]] = field(default_factory=list)
    parsed: Any = None


@dataclass(frozen=True, slots=True)
class Body:
    content: bytes | None
    content_type: str | None
    log: str


def dumps_json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def repair_json(text: str) -> Any:
    """Parse JSON leniently: control characters in strings, trailing commas, and unclosed
    strings, arrays and objects at the end are repaired. Raises ``ValueError`` otherwise."""
    try:
        return json.loads(text, strict=False)
    except ValueError:
        pass
    closers: list[str] = []
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "{[":
            closers.append("}" if char == "{" else "]")
        elif char in "}]" and closers:
            closers.pop()
    repaired = text + ('"' if in_string else "") + "".join(reversed(closers))
    return json.loads(_TRAILING_COMMA.sub(r"\1", repaired), strict=False)


def _quote(name: str) -> str:
    return name.replace("\\", "\\\\").replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


def build_body(
    body_type: str | None, items: Sequence[BodyItem], contents: Mapping[int, list[bytes]], boundary: str
) -> Body:
    """The encoded body, its default Content-Type and its log text. Raises ``ValueError``."""
    if body_type == "raw-text":
        item = items[0]
        return Body(item.value.encode() or None, BODY_CONTENT_TYPES[body_type], item.log_value)
    if body_type == "json":
        item = items[0]
        content = None if item.parsed is None else dumps_json(item.parsed)
        return Body(content, BODY_CONTENT_TYPES[body_type], item.log_value if content else "")
    if body_type == "x-www-form-urlencoded":
        data = {item.key: item.value for item in items}
        log = urlencode({item.log_key: item.log_value for item in items})
        return Body(urlencode(data).encode() or None, BODY_CONTENT_TYPES[body_type], log)
    if body_type == "binary":
        content = contents.get(0, [b""])[0]
        return Body(content, None, f"<binary_content: size={len(content)} bytes>")
    if body_type == "form-data":
        return _multipart(items, contents, boundary)
    return Body(None, None, "")


def _multipart(items: Sequence[BodyItem], contents: Mapping[int, list[bytes]], boundary: str) -> Body:
    fields = {item.key: (item.value, item.log_value) for item in items if not item.files}
    raw = bytearray()
    log: list[str] = []
    for key, (value, log_value) in fields.items():
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{_quote(key)}"\r\n\r\n'
        raw.extend(head.encode() + value.encode() + b"\r\n")
        log.append(f"{head}{log_value}\r\n")
    for index, item in enumerate(items):
        for file, data in zip(item.files, contents.get(index, []), strict=False):
            name = str(file.get("filename") or "")
            mime = str(file.get("mime_type") or "application/octet-stream")
            disposition = f'form-data; name="{_quote(item.key)}"; filename="{_quote(name)}"'
            head = f"--{boundary}\r\nContent-Disposition: {disposition}\r\nContent-Type: {mime}\r\n\r\n"
            raw.extend(head.encode() + data + b"\r\n")
            log.append(
                f'--{boundary}\r\nContent-Disposition: form-data; name="{_quote(item.key)}"\r\n\r\n'
                f"<file_content_binary: '{name or 'unknown'}', type='{mime}', size={len(data)} bytes>\r\n"
            )
    raw.extend(f"--{boundary}--\r\n".encode())
    log.append(f"--{boundary}--\r\n")
    return Body(bytes(raw), f"multipart/form-data; boundary={boundary}", "".join(log))


@dataclass(frozen=True, slots=True)
class Described:
    is_file: bool
    text: str
    headers: dict[str, str]
    filename: str
    mime_type: str
    size: int

    def size_error(self, threshold: int) -> str:
        if self.size < 1024:
            readable = f"{self.size} bytes"
        elif self.size < 1024 * 1024:
            readable = f"{self.size / 1024:.2f} KB"
        else:
            readable = f"{self.size / 1024 / 1024:.2f} MB"
        kind = "File" if self.is_file else "Text"
        return (
            f"{kind} size is too large, max size is {threshold / 1024 / 1024:.2f} MB,"
            f" but current size is {readable}."
        )


def describe_response(response: HttpResponse, url: str) -> Described:
    """Headers as Dify shows them (lower-case names, repeated values joined by ``, ``), and
    whether the body is a file: by Content-Disposition, else by media type and content."""
    headers: dict[str, str] = {}
    for key, value in response.headers:
        name = key.lower()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    message = Message()
    message["content-type"] = headers.get("content-type", "")
    media_type = headers.get("content-type", "").split(";")[0].strip().lower()
    charset = message.get_content_charset() or "utf-8"
    disposition_name: str | None = None
    attachment = False
    if headers.get("content-disposition"):
        parsed = Message()
        parsed["content-disposition"] = headers["content-disposition"]
        disposition_name = parsed.get_filename()
        attachment = parsed.get_content_disposition() == "attachment" or disposition_name is not None
    is_file = attachment or _is_binary(media_type, response.content)
    url_name = url.split("?", 1)[0].rsplit("/", 1)[-1]
    mime = (
        (mimetypes.guess_type(disposition_name)[0] if disposition_name else None)
        or media_type
        or mimetypes.guess_type(url_name)[0]
        or "application/octet-stream"
    )
    try:
        text = "" if is_file else response.content.decode(charset, "replace")
    except LookupError:
        text = response.content.decode("utf-8", "replace")
    return Described(is_file, text, headers, disposition_name or url_name, mime, len(response.content))


def _is_binary(media_type: str, content: bytes) -> bool:
    if media_type.startswith("text/") and "csv" not in media_type:
        return False
    if media_type.startswith("application/"):
        if any(kind in media_type for kind in _TEXT_APPLICATION_TYPES):
            return False
        sample = content[:1024]
        try:
            sample.decode("utf-8")
            if any(marker in sample for marker in _TEXT_MARKERS):
                return False
        except UnicodeDecodeError:
            pass
    guessed = mimetypes.guess_type("dummy" + (mimetypes.guess_extension(media_type) or ""))[0]
    if guessed:
        return guessed.split("/")[0] in _BINARY_MAIN_TYPES
    return any(kind in media_type for kind in ("image/", "audio/", "video/"))

"""Built-in text formats of the document extractor (§4.12): stdlib and PyYAML only.

Each function takes the file's bytes and returns its text the way the reference renders it:
JSON re-indented, YAML re-dumped, CSV as a Markdown table, WebVTT as ``Speaker "text"`` lines,
``.properties`` as ``key: value`` lines. Errors raise ``DocumentError`` with the node's message.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from email import policy
from email.parser import BytesParser
from html.parser import HTMLParser

import yaml

from sluice.engine.ports import DocumentError


def decode_text(content: bytes) -> str:
    """UTF-8 (a BOM honoured, UTF-16 by BOM), else Windows-1252; undecodable bytes dropped."""
    for bom, encoding in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if content.startswith(bom):
            return content.decode(encoding, "ignore")
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        return content.decode("cp1252", "ignore")


def plain_text(content: bytes) -> str:
    return decode_text(content)


def json_text(content: bytes) -> str:
    try:
        return json.dumps(json.loads(decode_text(content)), indent=2, ensure_ascii=False)
    except ValueError as exc:
        raise DocumentError(f"Failed to decode or parse JSON file: {exc}") from exc


def yaml_text(content: bytes) -> str:
    try:
        return yaml.dump_all(yaml.safe_load_all(decode_text(content)), allow_unicode=True, sort_keys=False)
    except yaml.YAMLError as exc:
        raise DocumentError(f"Failed to decode or parse YAML file: {exc}") from exc


def _cell(text: str) -> str:
    return text.replace("\n", " ").replace("\r", "")


def csv_text(content: bytes) -> str:
    try:
        rows = list(csv.reader(io.StringIO(decode_text(content))))
    except csv.Error as exc:
        raise DocumentError(f"Failed to extract text from CSV: {exc}") from exc
    if not rows:
        return ""
    lines = [
        "| " + " | ".join(_cell(c) for c in rows[0]) + " |\n",
        "| " + " | ".join("-" * len(c) for c in rows[0]) + " |\n",
    ]
    lines.extend("| " + " | ".join(_cell(c) for c in row) + " |\n" for row in rows[1:])
    return "".join(lines)


_VOICE = re.compile(r"^<v(?:\.[^\s>]*)?\s+([^>]*)>")
_TAG = re.compile(r"<[^>]*>")


def _vtt_cues(text: str) -> list[tuple[str | None, str]]:
    cues: list[tuple[str | None, str]] = []
    for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n").replace("\r", "\n")):
        lines = [line for line in block.split("\n") if line.strip()]
        timing = next((i for i, line in enumerate(lines) if "-->" in line), None)
        if timing is None:
            continue  # the WEBVTT header, NOTE, STYLE and REGION blocks
        body = lines[timing + 1 :]
        raw = "\n".join(body)
        voice = _VOICE.match(raw)
        cues.append((voice.group(1).strip() if voice else None, _TAG.sub("", raw)))
    return cues


def vtt_text(content: bytes) -> str:
    """Consecutive cues of one speaker merged (joined by a space), as the reference does."""
    cues = _vtt_cues(decode_text(content).lstrip("\ufeff"))
    if not cues:
        return ""
    merged: list[tuple[str | None, str]] = []
    speaker, text = cues[0]
    for next_speaker, next_text in cues[1:]:
        if next_speaker is None:
            merged.append((None, text))
        elif next_speaker == speaker:
            text = f"{text} {next_text}"
        else:
            merged.append((speaker, text))
            speaker, text = next_speaker, next_text
    merged.append((speaker, text))
    return "\n".join(f'{who or ""} "{said}"' for who, said in merged)


def properties_text(content: bytes) -> str:
    lines: list[str] = []
    for line in decode_text(content).splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "!")):
            lines.append(stripped)
            continue
        separator = "=" if "=" in stripped else ":" if ":" in stripped else None
        key, value = stripped.split(separator, 1) if separator else (stripped, "")
        lines.append(f"{key.strip()}: {value.strip()}")
    return "\n".join(lines)


class _HtmlText(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.parts.append(data.strip())


def eml_text(content: bytes) -> str:
    """The text parts of an e-mail (HTML parts as text when there is no plain one)."""
    try:
        message = BytesParser(policy=policy.default).parsebytes(content)
        plain: list[str] = []
        html: list[str] = []
        for part in message.walk():
            if part.get_content_maintype() == "multipart" or part.get_filename():
                continue
            if part.get_content_type() == "text/plain":
                plain.append(str(part.get_content()).strip())
            elif part.get_content_type() == "text/html":
                parser = _HtmlText()
                parser.feed(str(part.get_content()))
                html.append("\n".join(parser.parts))
    except Exception as exc:
        raise DocumentError(f"Failed to extract text from EML: {exc}") from exc
    return "\n".join(plain or html)

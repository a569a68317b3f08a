"""``TextExtractor``: the engine's ``DocumentExtractor`` port (§4.12).

The format is chosen by extension (with its dot), else by MIME type, from the same table as the
reference: plain text (txt, md, markdown, mdx, html, htm, xml, vtt and common source and config
files, kept as text), json, yaml/yml, csv, properties, WebVTT by MIME type, eml, pdf (pypdf),
docx (python-docx). Anything else fails "Unsupported Extension Type: .<ext>" or
"Unsupported MIME type: <mime>". Parsing runs in a worker thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from sluice.adapters.documents import formats, office
from sluice.engine.ports import DocumentError

Extract = Callable[[bytes], str]

PLAIN_TEXT_EXTENSIONS = frozenset(
    ".txt .markdown .md .mdx .html .htm .xml .c .h .cpp .hpp .cc .cxx .c++ .py .js .ts .jsx .tsx .java"
    " .php .rb .go .rs .swift .kt .scala .sh .bash .bat .ps1 .sql .r .m .pl .lua .vim .asm .s .css"
    " .scss .less .sass .ini .cfg .conf .toml .env .log .vtt".split()
)
PLAIN_TEXT_MIME_TYPES = frozenset({"text/plain", "text/html", "text/htm", "text/markdown", "text/xml"})

BY_EXTENSION: dict[str, Extract] = {
    **dict.fromkeys(PLAIN_TEXT_EXTENSIONS, formats.plain_text),
    ".json": formats.json_text,
    ".yaml": formats.yaml_text,
    ".yml": formats.yaml_text,
    ".csv": formats.csv_text,
    ".properties": formats.properties_text,
    ".eml": formats.eml_text,
    ".pdf": office.pdf_text,
    ".docx": office.docx_text,
}
BY_MIME_TYPE: dict[str, Extract] = {
    **dict.fromkeys(PLAIN_TEXT_MIME_TYPES, formats.plain_text),
    "application/json": formats.json_text,
    "application/x-yaml": formats.yaml_text,
    "text/yaml": formats.yaml_text,
    "text/csv": formats.csv_text,
    "text/properties": formats.properties_text,
    "text/vtt": formats.vtt_text,
    "message/rfc822": formats.eml_text,
    "application/pdf": office.pdf_text,
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": office.docx_text,
}


def choose(extension: str | None, mime_type: str | None) -> Extract:
    if extension:
        extract = BY_EXTENSION.get(extension.lower())
        if extract is None:
            raise DocumentError(f"Unsupported Extension Type: {extension}")
        return extract
    if mime_type:
        extract = BY_MIME_TYPE.get(mime_type.split(";")[0].strip().lower())
        if extract is None:
            raise DocumentError(f"Unsupported MIME type: {mime_type}")
        return extract
    raise DocumentError("Unable to determine file type: MIME type or file extension is missing")


class TextExtractor:
    async def extract(self, content: bytes, extension: str | None, mime_type: str | None) -> str:
        extract = choose(extension, mime_type)
        return await asyncio.to_thread(extract, content)

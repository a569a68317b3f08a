"""PDF (pypdf) and DOCX (python-docx) text, as the reference renders them."""

from __future__ import annotations

import io

import docx
import pypdf
from docx.table import Table
from docx.text.paragraph import Paragraph

from sluice.engine.ports import DocumentError


def pdf_text(content: bytes) -> str:
    """Page texts joined without separators."""
    try:
        reader = pypdf.PdfReader(io.BytesIO(content))
        return "".join(page.extract_text() or "" for page in reader.pages)
    except Exception as exc:
        raise DocumentError(f"Failed to extract text from PDF: {exc}") from exc


def docx_text(content: bytes) -> str:
    """Paragraphs and tables (as Markdown tables) in document order, one per line."""
    try:
        document = docx.Document(io.BytesIO(content))
        parts: list[str] = []
        for block in document.element.body.iterchildren():
            tag = block.tag.rsplit("}", 1)[-1]
            if tag == "p":
                parts.append(Paragraph(block, document).text)
            elif tag == "tbl":
                table = _table(Table(block, document))
                if table is not None:
                    parts.append(table)
        return "\n".join(parts)
    except Exception as exc:
        raise DocumentError(f"Failed to extract text from DOCX: {exc}") from exc


def _table(table: Table) -> str | None:
    rows = [[cell.text.replace("\n", "<br>") for cell in row.cells] for row in table.rows]
    if not rows or not any(cell.strip() for row in rows for cell in row):
        return None
    lines = [f"| {' | '.join(rows[0])} |", f"| {' | '.join(['---'] * len(rows[0]))} |"]
    lines.extend("| " + " | ".join(row) + " |" for row in rows[1:])
    return "\n".join(lines) + "\n"

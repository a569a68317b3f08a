"""document-extractor (engine.md §4.12) with the real extractor and the local file store."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from email.message import EmailMessage
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import docx
import pytest

from sluice.adapters.documents import TextExtractor
from sluice.adapters.files import LocalFileStore
from sluice.adapters.http import GuardedHttpTransport, SsrfPolicy
from sluice.engine.graph import NodeSpec
from sluice.engine.nodes.base import FAILED, SUCCEEDED, NodeError, NodeResult, RunContext
from sluice.engine.nodes.document import DocumentExtractorNode
from sluice.engine.pool import VariablePool
from sluice.engine.ports import FileStoreError, Ports
from sluice.engine.testkit import SeqIds, VirtualClock
from sluice.engine.values import FILE_IDENTITY

TENANT = "tenant-1"


def make_pdf(text: str) -> bytes:
    """A one-page PDF whose page shows ``text`` (written by hand: no PDF writer needed)."""
    content = f"BT /F1 18 Tf 20 100 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 300 144] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def make_docx() -> bytes:
    document = docx.Document()
    document.add_paragraph("Quarterly report")
    table = document.add_table(rows=2, cols=2)
    for row, values in zip(table.rows, (("Region", "Sales"), ("North", "12\n13")), strict=True):
        for cell, value in zip(row.cells, values, strict=True):
            cell.text = value
    document.add_paragraph("The end")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def make_eml() -> bytes:
    message = EmailMessage()
    message["Subject"] = "Hi"
    message["From"] = "a@example.test"
    message.set_content("Plain body line")
    message.add_alternative("<p>Html <b>body</b></p>", subtype="html")
    return bytes(message)


def upload(data_dir: Path, file_id: str, name: str, content: bytes, mime: str = "") -> dict[str, Any]:
    extension = "." + name.rsplit(".", 1)[-1] if "." in name else ""
    path = data_dir / "upload_files" / TENANT / f"{file_id}{extension}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return {
        "dify_model_identity": FILE_IDENTITY,
        "id": file_id,
        "type": "document",
        "transfer_method": "local_file",
        "remote_url": None,
        "reference": None,
        "filename": name,
        "extension": extension,
        "mime_type": mime,
        "size": len(content),
        "related_id": file_id,
        "url": None,
    }


async def extract(
    value: Any, store: LocalFileStore | None, *, extractor: TextExtractor | None = None
) -> NodeResult:
    pool = VariablePool()
    pool.set("start", "f", value)
    pool.set("start", "p", "text")
    extractor = extractor or TextExtractor()
    ports = Ports(VirtualClock(), SeqIds(), files=store, documents=extractor if store else None)
    ctx = RunContext("r", "workflow", ports, None)
    data = {"type": "document-extractor", "variable_selector": ["start", "f"]}
    node = DocumentExtractorNode(NodeSpec("doc", "document-extractor", "Doc", "1", data))
    try:
        return await node.run(node.prepare(pool, ctx), ctx)
    except NodeError as exc:
        return NodeResult.failure(exc.message, exc.error_type)


@pytest.fixture
def store(tmp_path: Path) -> LocalFileStore:
    return LocalFileStore(tmp_path)


FORMATS: list[tuple[str, bytes, str, str]] = [
    ("a.txt", "héllo\nworld".encode(), "", "héllo\nworld"),
    ("a.md", b"# Title", "", "# Title"),
    ("a.html", b"<p>x</p>", "", "<p>x</p>"),
    ("a.json", b'{"b": [1, 2], "a": "\xc3\xa9"}', "", '{\n  "b": [\n    1,\n    2\n  ],\n  "a": "é"\n}'),
    ("a.yaml", b"b: 1\na: [x, y]\n---\nc: true\n", "", "b: 1\na:\n- x\n- y\n---\nc: true\n"),
    ("a.csv", b"name,city\nAda,London\n", "", "| name | city |\n| ---- | ---- |\n| Ada | London |\n"),
    ("a.properties", b"# c\nkey = value\nother:thing\nflag\n", "", "# c\nkey: value\nother: thing\nflag: "),
    ("a.vtt", b"WEBVTT\n\n00:00.000 --> 00:01.000\nhi\n", "", "WEBVTT\n\n00:00.000 --> 00:01.000\nhi\n"),
    ("a.pdf", make_pdf("Hello PDF"), "", "Hello PDF"),
    (
        "a.docx",
        make_docx(),
        "",
        "Quarterly report\n| Region | Sales |\n| --- | --- |\n| North | 12<br>13 |\n\nThe end",
    ),
    ("a.eml", make_eml(), "", "Plain body line"),
    ("a.py", b"print('x')", "", "print('x')"),
    ("noext", b"plain by mime", "text/plain", "plain by mime"),
    ("noext", b"[1]", "application/json", "[\n  1\n]"),
]


@pytest.mark.parametrize(("name", "content", "mime", "text"), FORMATS, ids=[f[0] + f[2] for f in FORMATS])
async def test_formats(
    tmp_path: Path, store: LocalFileStore, name: str, content: bytes, mime: str, text: str
) -> None:
    result = await extract(upload(tmp_path, "f1", name, content, mime), store)
    assert result.status == SUCCEEDED, result.error
    assert result.outputs == {"text": text}
    assert result.inputs == {"variable_selector": ["start", "f"]}


async def test_webvtt_by_mime_merges_speakers(store: LocalFileStore) -> None:
    vtt = (
        b"WEBVTT\n\nNOTE a comment\n\n1\n00:00.000 --> 00:01.000\n<v Ada>Hello</v>\n\n"
        b"00:01.000 --> 00:02.000\n<v Ada>there</v>\n\n00:02.000 --> 00:03.000\n<v.loud Bob>Hi Ada</v>\n"
    )
    text = await TextExtractor().extract(vtt, None, "text/vtt")
    assert text == 'Ada "Hello there"\nBob "Hi Ada"'


async def test_a_list_of_files_gives_a_list_of_texts(tmp_path: Path, store: LocalFileStore) -> None:
    files = [upload(tmp_path, "f1", "a.txt", b"one"), None, upload(tmp_path, "f2", "b.json", b"2")]
    result = await extract(files, store)
    assert result.outputs == {"text": ["one", "2"]}
    assert (await extract([], store)).outputs == {"text": []}
    assert (await extract(None, store)).outputs == {"text": []}


async def test_unsupported_types_fail_with_the_reference_messages(
    tmp_path: Path, store: LocalFileStore
) -> None:
    result = await extract(upload(tmp_path, "f1", "a.xyz", b"?"), store)
    assert (result.status, result.error, result.error_type) == (
        FAILED,
        "Unsupported Extension Type: .xyz",
        None,
    )
    result = await extract(upload(tmp_path, "f2", "noext", b"?", "application/zip"), store)
    assert result.error == "Unsupported MIME type: application/zip"
    result = await extract(upload(tmp_path, "f3", "noext", b"?"), store)
    assert result.error == "Unable to determine file type: MIME type or file extension is missing"
    result = await extract(upload(tmp_path, "f4", "bad.json", b"{nope"), store)
    assert result.error is not None and result.error.startswith("Failed to decode or parse JSON file: ")
    result = await extract(upload(tmp_path, "f5", "bad.pdf", b"not a pdf"), store)
    assert result.error is not None and result.error.startswith("Failed to extract text from PDF: ")


async def test_variable_errors(tmp_path: Path, store: LocalFileStore) -> None:
    pool = VariablePool()
    pool.set("start", "p", "text")
    ports = Ports(VirtualClock(), SeqIds(), files=store, documents=TextExtractor())
    ctx = RunContext("r", "workflow", ports, None)
    for selector, message in (
        (["start", "nope"], "File variable not found for selector: ['start', 'nope']"),
        (["start", "p"], "Variable ['start', 'p'] is not an ArrayFileSegment"),
    ):
        node = DocumentExtractorNode(
            NodeSpec("doc", "document-extractor", "Doc", "1", {"variable_selector": selector})
        )
        with pytest.raises(NodeError) as info:
            node.prepare(pool, ctx)
        assert (info.value.message, info.value.error_type) == (message, None)


async def test_missing_file_and_missing_ports(tmp_path: Path, store: LocalFileStore) -> None:
    gone = upload(tmp_path, "f1", "a.txt", b"x")
    (tmp_path / "upload_files" / TENANT / "f1.txt").unlink()
    assert (await extract(gone, store)).error == "Error downloading file: File f1.txt not found"
    result = await extract(upload(tmp_path, "f2", "a.txt", b"x"), None)
    assert (result.error, result.error_type) == (
        "File store is not configured",
        "ServiceNotConfiguredError",
    )


async def test_file_values_cannot_escape_the_store(tmp_path: Path, store: LocalFileStore) -> None:
    (tmp_path / "secret.txt").write_text("do not read")
    for forged in (
        {"transfer_method": "local_file", "reference": "upload_files/../secret.txt"},
        {"transfer_method": "local_file", "related_id": "../secret", "extension": ".txt"},
        {"transfer_method": "tool_file", "related_id": "x", "extension": "/../../secret.txt"},
    ):
        with pytest.raises(FileStoreError):
            await store.read(forged)


async def test_saved_files_read_back(tmp_path: Path, store: LocalFileStore) -> None:
    saved = await store.save(b"%PDF-1.4 ...", "report.pdf", "application/pdf")
    assert saved["transfer_method"] == "tool_file" and saved["extension"] == ".pdf"
    assert saved["type"] == "document" and saved["size"] == 12 and saved["filename"] == "report.pdf"
    assert saved["reference"] == f"upload_files/tool_files/{saved['id']}.pdf"
    assert await store.read(saved) == b"%PDF-1.4 ..."
    image = await store.save(b"\x89PNG", "", "image/png")
    assert image["type"] == "image" and image["extension"] == ".png"
    assert image["filename"] == f"{image['id']}.png"


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def remote(tmp_path: Path) -> Iterator[str]:
    site = tmp_path / "site"
    site.mkdir()
    (site / "notes.md").write_text("# Remote notes")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(site)))
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def remote_file(url: str) -> dict[str, Any]:
    return {
        "dify_model_identity": FILE_IDENTITY,
        "id": None,
        "type": "document",
        "transfer_method": "remote_url",
        "remote_url": url,
        "filename": "notes.md",
        "extension": ".md",
        "mime_type": "text/markdown",
        "size": -1,
        "related_id": None,
        "url": url,
    }


async def test_remote_files_are_fetched_behind_the_ssrf_guard(tmp_path: Path, remote: str) -> None:
    guarded = LocalFileStore(tmp_path, GuardedHttpTransport())
    result = await extract(remote_file(f"{remote}/notes.md"), guarded)
    assert result.error == "Error downloading file: Access to 127.0.0.1 (127.0.0.1) is blocked"
    transport = GuardedHttpTransport(SsrfPolicy.build(allow_private_networks=True))
    allowed = LocalFileStore(tmp_path, transport)
    assert (await extract(remote_file(f"{remote}/notes.md"), allowed)).outputs == {"text": "# Remote notes"}
    missing = await extract(remote_file(f"{remote}/missing.md"), allowed)
    assert (
        missing.error == f"Error downloading file: Request to {remote}/missing.md failed with status code 404"
    )
    await transport.aclose()

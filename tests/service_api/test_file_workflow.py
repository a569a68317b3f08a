"""A file-list start variable, an iteration and a document extractor, end to end: uploaded pdf,
docx and csv files plus a ``remote_url`` file from a local HTTP server the server is told to allow
(``SLUICE_IO__HTTP_ALLOWED_HOSTS``); in distributed mode the uploads live in S3 (moto)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import httpx
import pytest
from tests.engine.test_document_node import make_docx, make_pdf
from tests.service_api.conftest import FIXTURES, Keys, app_key, assert_error, auth
from tests.support.servers import LiveServer


@pytest.fixture(scope="module")
def files_app(svc: LiveServer) -> Keys:
    return app_key(svc, FIXTURES / "files_app.yml")


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path != "/notes.md":
            self.send_error(404)
            return
        body = b"# Remote notes\nfetched through the guard"
        self.send_response(200)
        self.send_header("Content-Type", "text/markdown")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture(scope="module")
def file_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_documents_are_extracted_in_an_iteration(svc: LiveServer, files_app: Keys, file_server: str) -> None:
    with httpx.Client(base_url=svc.base_url, timeout=60) as client:
        ids = []
        for name, content in (
            ("report.pdf", make_pdf("Hello from PDF")),
            ("report.docx", make_docx()),
            ("table.csv", b"city,people\nOslo,700000\n"),
        ):
            resp = client.post(
                "/v1/files/upload",
                headers=auth(files_app.key),
                files={"file": (name, content)},
                data={"user": "fu"},
            )
            assert resp.status_code == 201, resp.text
            ids.append(resp.json()["id"])
        docs = [{"type": "document", "transfer_method": "local_file", "upload_file_id": i} for i in ids]
        docs.append({"type": "document", "transfer_method": "remote_url", "url": f"{file_server}/notes.md"})
        body = {"inputs": {"docs": docs}, "response_mode": "blocking", "user": "fu"}
        resp = client.post("/v1/workflows/run", json=body, headers=auth(files_app.key))
        assert resp.status_code == 200, resp.text
        data = resp.json()["data"]
        assert data["status"] == "succeeded", data["error"]
        texts = data["outputs"]["texts"]
        assert len(texts) == 4
        assert "Hello from PDF" in texts[0]
        assert "Quarterly report" in texts[1]
        assert "Oslo" in texts[2] and "city" in texts[2]
        assert "Remote notes" in texts[3]
        files = data["outputs"]["files"]
        assert [f["filename"] for f in files] == ["report.pdf", "report.docx", "table.csv", "notes.md"]
        assert files[0]["dify_model_identity"] == "__dify__file__" and files[0]["extension"] == ".pdf"
        assert files[0]["transfer_method"] == "local_file" and files[3]["transfer_method"] == "remote_url"
        assert files[2]["mime_type"] == "text/csv" and files[1]["size"] > 0

        # a remote file the guard refuses (not on the allow-list) fails the node, not the request
        blocked = {"type": "document", "transfer_method": "remote_url", "url": "http://10.255.255.1/x.txt"}
        body = {"inputs": {"docs": [blocked]}, "response_mode": "blocking", "user": "fu"}
        data = client.post("/v1/workflows/run", json=body, headers=auth(files_app.key)).json()["data"]
        assert data["status"] == "failed" and "10.255.255.1" in (data["error"] or "")

        # a run's files count against WORKFLOW_FILE_UPLOAD_LIMIT only up to the variable's own limit
        body = {"inputs": {"docs": docs * 2}, "response_mode": "blocking", "user": "fu"}
        resp = client.post("/v1/workflows/run", json=body, headers=auth(files_app.key))
        assert_error(resp, 400, "invalid_param", "docs in input form must be less than 5 files")

"""``POST /v1/files/upload`` against a real server in both modes (service-api §5.4, §11 19-22)."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path

import httpx
import pytest
from tests.service_api.conftest import FIXTURES, SHARED_FIXTURES, Keys, app_key, assert_error, auth
from tests.support.servers import LiveServer

from sluice.api.service.chat_schemas import FileResponse
from sluice.services.errors import InvalidParam
from sluice.services.files import FileService, UploadLimits

MB = 1024 * 1024


@pytest.fixture(scope="module")
def files_app(svc: LiveServer) -> Keys:
    return app_key(svc, FIXTURES / "files_app.yml")


@pytest.fixture(scope="module")
def other_workspace(svc: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Keys:
    """App B: the same DSL imported into another workspace."""
    path = tmp_path_factory.mktemp("w2") / "app_b.yml"
    path.write_text((SHARED_FIXTURES / "app_a.yml").read_text())
    app_id = svc.cli("apps", "import", str(path), "--workspace", "W2").stdout.strip().splitlines()[-1]
    return Keys(app_id, svc.create_key(app_id))


@pytest.fixture
def client(svc: LiveServer) -> httpx.Client:
    with httpx.Client(base_url=svc.base_url, timeout=60) as c:
        yield c


def upload(
    client: httpx.Client,
    key: str,
    name: str,
    content: bytes,
    user: str | None = "u1",
    mime: str | None = None,
) -> httpx.Response:
    part = (name, content, mime) if mime else (name, content)
    data = {"user": user} if user is not None else {}
    return client.post("/v1/files/upload", headers=auth(key), files={"file": part}, data=data)


def run_files(client: httpx.Client, key: str, inputs: dict[str, object], user: str = "u1") -> httpx.Response:
    body = {"inputs": inputs, "response_mode": "blocking", "user": user}
    return client.post("/v1/workflows/run", json=body, headers=auth(key))


def test_upload_pdf_and_use_it_as_an_input_scenario_19(client: httpx.Client, files_app: Keys) -> None:
    resp = upload(client, files_app.key, "a.pdf", b"%PDF-1.4\n" + b"x" * 1015)
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert set(body) == set(FileResponse.model_fields)
    assert (body["name"], body["size"], body["extension"]) == ("a.pdf", 1024, "pdf")
    assert body["mime_type"] == "application/pdf" and isinstance(body["created_at"], int)
    uuid.UUID(body["id"])
    ref = {"type": "document", "transfer_method": "local_file", "upload_file_id": body["id"]}
    run = run_files(client, files_app.key, {"docs": [ref]})
    assert run.status_code == 200, run.text
    data = run.json()["data"]
    assert data["status"] in ("succeeded", "failed")  # the bytes are not a readable PDF
    logs = client.get("/v1/workflows/logs", params={"limit": 1}, headers=auth(files_app.key)).json()
    assert logs["data"][0]["created_by_end_user"]["id"] == body["created_by"]
    detail = client.get(f"/v1/workflows/run/{data['id']}", headers=auth(files_app.key)).json()
    assert '"reference": "upload_files/' in detail["inputs"] and body["id"] in detail["inputs"]


def test_size_limits_by_category_scenario_20(client: httpx.Client, files_app: Keys) -> None:
    resp = upload(client, files_app.key, "big.pdf", b"\0" * (16 * MB))
    assert_error(resp, 413, "file_too_large")
    assert resp.json()["message"].endswith("> 15 MB limit for document files.")
    assert_error(upload(client, files_app.key, "big.png", b"\0" * (12 * MB)), 413, "file_too_large")
    resp = upload(client, files_app.key, "song.mp3", b"\0" * (12 * MB))
    assert resp.status_code == 201 and resp.json()["mime_type"] == "audio/mpeg"
    assert upload(client, files_app.key, "empty.txt", b"").json()["size"] == 0


def test_extension_and_form_rules_scenario_21(client: httpx.Client, files_app: Keys) -> None:
    # this server blacklists `bat` only (see conftest): any other extension is stored
    resp = upload(client, files_app.key, "tool.exe", b"MZ")
    assert resp.status_code == 201 and resp.json()["extension"] == "exe"
    resp = upload(client, files_app.key, "run.BAT", b"@echo")
    assert_error(resp, 400, "invalid_param", "File extension '.bat' is not allowed for security reasons")
    no_file = {"code": "no_file_uploaded", "message": "Please upload your file.", "status": 400}
    resp = client.post("/v1/files/upload", headers=auth(files_app.key), data={"user": "u1"})
    assert resp.status_code == 400 and resp.json() == no_file
    resp = client.post("/v1/files/upload", headers=auth(files_app.key), json={"user": "u1"})
    assert resp.status_code == 400 and resp.json() == no_file
    resp = client.post("/v1/files/upload", headers=auth(files_app.key), data={"file": "not a file part"})
    assert resp.status_code == 400 and resp.json() == no_file
    resp = client.post(
        "/v1/files/upload",
        headers=auth(files_app.key),
        files=[("file", ("a.txt", b"1")), ("file2", ("b.txt", b"2"))],
    )
    assert_error(resp, 400, "too_many_files", "Only one file is allowed.")
    resp = client.post(
        "/v1/files/upload",
        headers=auth(files_app.key),
        files=[("file", ("a.txt", b"1")), ("file", ("b.txt", b"2"))],
    )
    assert resp.status_code == 201 and resp.json()["name"] == "a.txt"  # repeated `file`: the first wins


@pytest.mark.parametrize("name", ["a/b.txt", "a\\b.txt", "bad\x01name.txt", "tab\tname.txt"])
def test_bad_filenames(client: httpx.Client, files_app: Keys, name: str) -> None:
    resp = raw_upload(client, files_app.key, name.encode(), b"data")
    assert_error(resp, 400, "invalid_param", "Filename contains invalid characters")


def test_empty_and_long_filenames(client: httpx.Client, files_app: Keys) -> None:
    resp = raw_upload(client, files_app.key, b"", b"data")
    assert_error(resp, 400, "filename_not_exists_error", "The specified filename does not exist.")
    long = "n" * 250 + ".csv"
    resp = upload(client, files_app.key, long, b"a,b\n")
    assert resp.status_code == 201 and resp.json()["name"] == "n" * 200 + ".csv"
    unicode = upload(client, files_app.key, "résumé – 2026.txt", b"hi")
    assert unicode.status_code == 201 and unicode.json()["name"] == "résumé – 2026.txt"


def raw_upload(client: httpx.Client, key: str, filename: bytes, content: bytes) -> httpx.Response:
    """A hand-built form, so any filename byte reaches the server as written."""
    boundary = b"sluice-test-boundary"
    body = (
        b"--" + boundary + b"\r\n"
        b'Content-Disposition: form-data; name="user"\r\n\r\nu1\r\n'
        b"--" + boundary + b"\r\n"
        b'Content-Disposition: form-data; name="file"; filename="' + filename + b'"\r\n'
        b"Content-Type: text/plain\r\n\r\n" + content + b"\r\n--" + boundary + b"--\r\n"
    )
    headers = {**auth(key), "Content-Type": "multipart/form-data; boundary=" + boundary.decode()}
    return client.post("/v1/files/upload", content=body, headers=headers)


def test_upload_ownership_scenario_22(client: httpx.Client, files_app: Keys, other_workspace: Keys) -> None:
    foreign = upload(client, other_workspace.key, "b.pdf", b"%PDF-1.4").json()["id"]
    by_u2 = upload(client, files_app.key, "c.pdf", b"%PDF-1.4", user="u2").json()["id"]
    for file_id in (foreign, by_u2, str(uuid.uuid4())):
        ref = {"type": "document", "transfer_method": "local_file", "upload_file_id": file_id}
        assert_error(
            run_files(client, files_app.key, {"docs": [ref]}), 400, "invalid_param", "Invalid upload file"
        )


def test_file_input_rules(client: httpx.Client, files_app: Keys) -> None:
    csv_id = upload(client, files_app.key, "t.csv", b"a,b\n1,2\n").json()["id"]
    doc = {"type": "document", "transfer_method": "local_file", "upload_file_id": csv_id}
    image = {"type": "image", "transfer_method": "local_file", "upload_file_id": csv_id}
    cases = [
        ({"docs": [image]}, "File validation failed for file: t.csv"),
        ({"docs": [doc], "photo": {**image, "transfer_method": "remote_url", "url": "http://x/a.png"}},
         "File validation failed for file: a.png"),
        ({"docs": [{"type": "document", "transfer_method": "remote_url", "url": "ftp://x/a.pdf"}]},
         "Invalid file url"),
        ({"docs": [doc] * 6}, "docs in input form must be less than 5 files"),
        ({"docs": doc}, "docs in input form must be a list of files"),
        ({"docs": [{**doc, "type": "pdf"}]}, None),
        ({"docs": [{**doc, "transfer_method": "tool_file"}]},
         "docs.transfer_method: Input should be 'remote_url' or 'local_file'"),
    ]  # fmt: skip
    for inputs, message in cases:
        resp = run_files(client, files_app.key, inputs)
        assert_error(resp, 400, "invalid_param", message)
        if message is None:
            assert resp.json()["message"].startswith("docs.type: Input should be")


def test_oversized_streamed_body_is_cut_and_memory_stays_flat(svc: LiveServer, files_app: Keys) -> None:
    """200 MB streamed (chunked, no length) to a 15 MB limit: refused with 413 early; the server's
    resident memory does not grow with the body. A declared oversize length is refused unread."""
    pid = svc.procs["serve"].pid
    before = rss_bytes(pid)
    status, sent = stream_upload(svc.base_url, files_app.key, total=200 * MB, declared=False)
    after = rss_bytes(pid)
    print(
        f"\nupload cut: sent {sent / MB:.1f} of 200 MiB; serve RSS {before / MB:.1f} -> {after / MB:.1f} MiB"
    )
    assert status == 413
    assert sent < 200 * MB  # the server answered before the body ended
    assert after - before < 40 * MB, (before, after)
    status, sent = stream_upload(svc.base_url, files_app.key, total=200 * MB, declared=True)
    assert status == 413 and sent < 20 * MB


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def stream_upload(base_url: str, key: str, *, total: int, declared: bool) -> tuple[int, int]:
    """Send a multipart body from a generator over a raw socket, reading the response as soon as
    the server sends one; returns ``(status, body bytes sent)``."""
    host, port = base_url.removeprefix("http://").split(":")
    boundary = b"cut-boundary"
    head = (
        b"--" + boundary + b'\r\nContent-Disposition: form-data; name="file"; filename="huge.pdf"\r\n'
        b"Content-Type: application/pdf\r\n\r\n"
    )
    chunk = b"\0" * (256 * 1024)
    length = f"Content-Length: {len(head) + total}\r\n" if declared else "Transfer-Encoding: chunked\r\n"
    request = (
        f"POST /v1/files/upload HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary.decode()}\r\n{length}\r\n"
    ).encode()
    sent = 0
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        sock.sendall(request)
        pieces = [head] + [chunk] * (total // len(chunk))
        for piece in pieces:
            sock.setblocking(False)
            try:
                peek = sock.recv(65536)
            except BlockingIOError:
                peek = b""
            finally:
                sock.setblocking(True)
            if peek:
                return int(peek.split(b" ", 2)[1]), sent
            try:
                sock.sendall(piece if declared else b"%x\r\n%s\r\n" % (len(piece), piece))
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(piece)
        sock.settimeout(30)
        reply = sock.recv(65536)
    return int(reply.split(b" ", 2)[1]), sent


def test_blacklisted_exe_is_refused_before_any_byte_is_stored(tmp_path: Path) -> None:
    service = FileService(None, None, UploadLimits(blacklist=frozenset({"exe"})), tmp_path)  # type: ignore[arg-type]
    with pytest.raises(InvalidParam, match=r"File extension '\.exe' is not allowed for security reasons"):
        service.check_name("tool.exe")
    assert service.check_name("tool.pdf").limit_mb == 15
    assert not list(tmp_path.iterdir())


def test_request_files_become_sys_files(client: httpx.Client, files_app: Keys) -> None:
    csv_id = upload(client, files_app.key, "s.csv", b"a\n").json()["id"]
    doc = {"type": "document", "transfer_method": "local_file", "upload_file_id": csv_id}
    remote = {"type": "document", "transfer_method": "remote_url", "remote_url": "http://127.0.0.1:9/r.txt"}
    body = {"inputs": {"docs": []}, "files": [doc, remote], "response_mode": "blocking", "user": "u1"}
    resp = client.post("/v1/workflows/run", json=body, headers=auth(files_app.key))
    assert resp.status_code == 200, resp.text
    sys_files = resp.json()["data"]["outputs"]["sys_files"]
    assert [(f["filename"], f["transfer_method"]) for f in sys_files] == [
        ("s.csv", "local_file"),
        ("r.txt", "remote_url"),
    ]
    body["files"] = [doc, doc, doc]  # the feature allows two
    resp = client.post("/v1/workflows/run", json=body, headers=auth(files_app.key))
    assert_error(resp, 400, "invalid_param", "Number of files exceeds the limit")
    body["files"] = [{**doc, "type": "image"}]
    resp = client.post("/v1/workflows/run", json=body, headers=auth(files_app.key))
    assert_error(resp, 400, "invalid_param", "File validation failed for file: s.csv")

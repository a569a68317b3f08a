"""The SSRF-guarded httpx transport against a real HTTP server on 127.0.0.1.

Private addresses are allowed explicitly where a test needs the local server; every blocked
address is refused before any connection is made (the server counts what reaches it), so these
tests never send traffic beyond loopback.
"""

from __future__ import annotations

import gzip
import ipaddress
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest

from sluice.adapters.http import GuardedHttpTransport, SsrfPolicy, is_public
from sluice.engine.ports import HttpLimits, HttpRequest, HttpRequestError, HttpTimeouts

TIMEOUTS = HttpTimeouts(connect=5, read=5, write=5)
LOCAL = SsrfPolicy.build(allow_private_networks=True)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hits: ClassVar[list[str]] = []

    def log_message(self, *args: object) -> None:
        return None

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in {"Content-Length": str(len(body)), **(headers or {})}.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _handle(self) -> None:
        Handler.hits.append(self.path)
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if url.path == "/echo":
            echo = {
                "method": self.command,
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body.decode("utf-8", "replace"),
            }
            self._send(200, json.dumps(echo).encode(), {"Content-Type": "application/json"})
        elif url.path == "/redirect":
            self._send(302, b"", {"Location": query["to"][0]})
        elif url.path.startswith("/chain/"):
            left = int(url.path.rsplit("/", 1)[1])
            if left:
                self._send(302, b"", {"Location": f"/chain/{left - 1}"})
            else:
                self._send(200, b"done")
        elif url.path == "/big":
            size = int(query["n"][0])
            headers = {} if "chunked" not in query else {"Transfer-Encoding": "chunked"}
            if headers:
                self.send_response(200)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                chunk = b"x" * 65536
                sent = 0
                while sent < size:
                    part = chunk[: size - sent]
                    self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
                    sent += len(part)
                self.wfile.write(b"0\r\n\r\n")
            else:
                self._send(200, b"x" * size)
        elif url.path == "/gzip":
            self._send(200, gzip.compress(b"hello " * 100), {"Content-Encoding": "gzip"})
        elif url.path == "/cookie":
            self._send(200, b"set", {"Set-Cookie": "session=abc; Path=/"})
        elif url.path == "/slow":
            time.sleep(2)
            self._send(200, b"late")
        else:
            self._send(404, b"not found")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


async def send(
    transport: GuardedHttpTransport, url: str, limits: HttpLimits | None = None, **kw: object
) -> tuple[int, bytes, str]:
    request = HttpRequest(kw.pop("method", "GET"), url, **kw)  # type: ignore[arg-type]
    try:
        response = await transport.send(request, TIMEOUTS, limits or HttpLimits())
        return response.status_code, response.content, response.url
    finally:
        await transport.aclose()


async def blocked(transport: GuardedHttpTransport, url: str) -> str:
    with pytest.raises(HttpRequestError) as info:
        await send(transport, url)
    assert info.value.error_type == "RequestBlockedError"
    return info.value.message


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("100.64.0.1", False),
        ("169.254.169.254", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("240.0.0.1", False),
        ("::1", False),
        ("::", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("ff02::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:8.8.8.8", True),
        ("64:ff9b::a9fe:a9fe", False),
        ("2002:7f00:1::", False),
    ],
)
def test_public_addresses(address: str, public: bool) -> None:
    assert is_public(ipaddress.ip_address(address)) is public


def test_allowed_hosts_accept_names_wildcards_and_networks() -> None:
    policy = SsrfPolicy.build(allowed_hosts=["Internal.Example", "*.corp.test", "10.0.0.0/8", "127.0.0.1"])
    policy.check("internal.example.", "10.9.9.9")
    policy.check("api.corp.test", "192.168.0.1")
    policy.check("anything", "10.1.2.3")
    policy.check("anything", "::ffff:10.1.2.3")
    policy.check("anything", "127.0.0.1")
    with pytest.raises(Exception, match=r"Access to corp\.test \(192\.168\.0\.1\) is blocked"):
        policy.check("corp.test", "192.168.0.1")


async def test_private_and_metadata_addresses_are_blocked_by_default(server: str) -> None:
    port = server.rsplit(":", 1)[1]
    before = len(Handler.hits)
    cases = {
        f"http://127.0.0.1:{port}/echo": "Access to 127.0.0.1 (127.0.0.1) is blocked",
        f"http://localhost:{port}/echo": "Access to localhost (127.0.0.1) is blocked",
        f"http://[::ffff:127.0.0.1]:{port}/echo": "Access to ::ffff:127.0.0.1 (::ffff:127.0.0.1) is blocked",
        "http://169.254.169.254/latest/meta-data/": "Access to 169.254.169.254 (169.254.169.254) is blocked",
        "http://10.0.0.1/": "Access to 10.0.0.1 (10.0.0.1) is blocked",
        "http://0.0.0.0/": "Access to 0.0.0.0 (0.0.0.0) is blocked",
    }
    for url, message in cases.items():
        assert await blocked(GuardedHttpTransport(), url) == message
    assert len(Handler.hits) == before  # nothing reached the server


async def test_allowed_with_private_networks_enabled(server: str) -> None:
    status, body, final = await send(
        GuardedHttpTransport(LOCAL),
        f"http://{server}/echo",
        params=(("a", "1"), ("a", "2")),
        headers=(("X-K", "v"), ("Authorization", "Bearer k")),
    )
    echo = json.loads(body)
    assert status == 200 and final == f"http://{server}/echo?a=1&a=2"
    assert echo["path"] == "/echo?a=1&a=2"
    assert echo["headers"]["x-k"] == "v" and echo["headers"]["authorization"] == "Bearer k"


async def test_allowed_hosts_let_named_local_hosts_through(server: str) -> None:
    port = server.rsplit(":", 1)[1]
    by_name = GuardedHttpTransport(SsrfPolicy.build(allowed_hosts=["localhost"]))
    assert (await send(by_name, f"http://localhost:{port}/chain/0"))[1] == b"done"
    by_cidr = GuardedHttpTransport(SsrfPolicy.build(allowed_hosts=["127.0.0.0/8"]))
    assert (await send(by_cidr, f"http://127.0.0.1:{port}/chain/0"))[1] == b"done"


async def test_every_redirect_is_checked(server: str) -> None:
    """localhost is allowed by name; a redirect to 127.0.0.1 (or elsewhere) is vetted again."""
    port = server.rsplit(":", 1)[1]
    before = len(Handler.hits)
    for target, address in (
        (f"http://127.0.0.1:{port}/echo", "127.0.0.1"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254"),
        ("http://10.0.0.1/", "10.0.0.1"),
    ):
        transport = GuardedHttpTransport(SsrfPolicy.build(allowed_hosts=["localhost"]))
        message = await blocked(transport, f"http://localhost:{port}/redirect?to={target}")
        assert message == f"Access to {address} ({address}) is blocked"
    assert len(Handler.hits) == before + 3  # only the first hops arrived


async def test_redirects_are_followed_up_to_the_limit(server: str) -> None:
    limits = HttpLimits(max_redirects=3)
    status, body, final = await send(GuardedHttpTransport(LOCAL), f"http://{server}/chain/3", limits)
    assert (status, body, final) == (200, b"done", f"http://{server}/chain/0")
    with pytest.raises(HttpRequestError) as info:
        await send(GuardedHttpTransport(LOCAL), f"http://{server}/chain/4", limits)
    assert info.value.error_type == "HttpRequestNodeError"
    assert info.value.message == "Exceeded maximum allowed redirects."


async def test_response_size_limit(server: str) -> None:
    limits = HttpLimits(max_body_bytes=100_000)
    assert (
        len((await send(GuardedHttpTransport(LOCAL), f"http://{server}/big?n=100000", limits))[1]) == 100_000
    )
    for url in (f"http://{server}/big?n=100001", f"http://{server}/big?n=300000&chunked=1"):
        with pytest.raises(HttpRequestError) as info:
            await send(GuardedHttpTransport(LOCAL), url, limits)
        assert info.value.error_type == "ResponseSizeError"
        assert info.value.message.startswith("Response size is too large, max size is 0.10 MB")


async def test_body_methods_and_statuses(server: str) -> None:
    status, body, _ = await send(
        GuardedHttpTransport(LOCAL),
        f"http://{server}/echo",
        method="POST",
        headers=(("Content-Type", "application/json"),),
        content=b'{"a":1}',
    )
    echo = json.loads(body)
    assert status == 200 and echo["method"] == "POST" and echo["body"] == '{"a":1}'
    assert echo["headers"]["content-length"] == "7"
    assert (await send(GuardedHttpTransport(LOCAL), f"http://{server}/nope"))[:2] == (404, b"not found")
    assert (await send(GuardedHttpTransport(LOCAL), f"http://{server}/gzip"))[1] == b"hello " * 100


async def test_cookies_do_not_leak_between_requests(server: str) -> None:
    transport = GuardedHttpTransport(LOCAL)
    request = HttpRequest("GET", f"http://{server}/cookie")
    await transport.send(request, TIMEOUTS, HttpLimits())
    echo = await transport.send(HttpRequest("GET", f"http://{server}/echo"), TIMEOUTS, HttpLimits())
    await transport.aclose()
    assert "cookie" not in json.loads(echo.content)["headers"]


async def test_timeouts_and_bad_urls(server: str) -> None:
    transport = GuardedHttpTransport(LOCAL)
    with pytest.raises(HttpRequestError) as info:
        await transport.send(
            HttpRequest("GET", f"http://{server}/slow"), HttpTimeouts(1, 0.2, 1), HttpLimits()
        )
    assert info.value.error_type == "HttpRequestNodeError" and info.value.message
    with pytest.raises(HttpRequestError) as info:
        await transport.send(HttpRequest("GET", "http://exa mple.com:xx/"), TIMEOUTS, HttpLimits())
    assert info.value.error_type == "InvalidURLError"
    await transport.aclose()

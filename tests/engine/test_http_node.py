"""http-request (engine.md §4.5, §9 scenario 21) against a recording fake transport."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from sluice.engine.graph import NodeSpec, RetryConfig
from sluice.engine.nodes.base import FAILED, SUCCEEDED, NodeError, NodeResult, RunContext
from sluice.engine.nodes.http import HttpRequestNode
from sluice.engine.pool import VariablePool
from sluice.engine.ports import (
    HttpLimits,
    HttpRequest,
    HttpRequestError,
    HttpResponse,
    HttpTimeouts,
    Ports,
)
from sluice.engine.testkit import SeqIds, VirtualClock
from sluice.engine.values import FILE_IDENTITY, Secret

SETTINGS = SimpleNamespace(
    http_connect_timeout_s=10,
    http_read_timeout_s=600,
    http_write_timeout_s=600,
    http_max_text_bytes=1024 * 1024,
    http_max_file_bytes=10 * 1024 * 1024,
    http_max_redirects=20,
)


@dataclass
class FakeTransport:
    responses: list[HttpResponse | HttpRequestError] = field(default_factory=list)
    sent: list[tuple[HttpRequest, HttpTimeouts, HttpLimits]] = field(default_factory=list)

    async def send(self, request: HttpRequest, timeouts: HttpTimeouts, limits: HttpLimits) -> HttpResponse:
        self.sent.append((request, timeouts, limits))
        answer = self.responses.pop(0) if self.responses else ok()
        if isinstance(answer, HttpRequestError):
            raise answer
        return answer


@dataclass
class FakeFiles:
    contents: dict[str, bytes] = field(default_factory=dict)
    saved: list[tuple[bytes, str, str]] = field(default_factory=list)

    async def read(self, file: Mapping[str, Any]) -> bytes:
        return self.contents[str(file["id"])]

    async def save(self, content: bytes, name: str, mime: str) -> dict[str, Any]:
        self.saved.append((content, name, mime))
        return make_file("saved", name, mime, transfer_method="tool_file")


def ok(body: bytes = b'{"ok": true}', status: int = 200, **headers: str) -> HttpResponse:
    pairs = tuple({"Content-Type": "application/json", **headers}.items())
    return HttpResponse(status, pairs, body, "https://api.test/")


def make_file(file_id: str, name: str, mime: str, **extra: Any) -> dict[str, Any]:
    return {
        "dify_model_identity": FILE_IDENTITY,
        "id": file_id,
        "type": "document",
        "transfer_method": "local_file",
        "remote_url": None,
        "reference": None,
        "filename": name,
        "extension": "." + name.rsplit(".", 1)[-1],
        "mime_type": mime,
        "size": 5,
        "related_id": file_id,
        "url": None,
        **extra,
    }


def pool() -> VariablePool:
    values = VariablePool()
    values.set("start", "p", "items")
    values.set("start", "name", 'Ada "the first"')
    values.set("start", "doc", make_file("f1", "a.txt", "text/plain"))
    values.set(
        "start", "docs", [make_file("f1", "a.txt", "text/plain"), make_file("f2", "b.csv", "text/csv")]
    )
    values.set("env", "k", Secret("k-value-123456"))
    values.set("env", "token", Secret("secret-token"))
    return values


def node(data: Mapping[str, Any], **spec: Any) -> HttpRequestNode:
    base = {
        "type": "http-request",
        "method": "get",
        "url": "https://api.test/",
        "authorization": {"type": "no-auth"},
        "headers": "",
        "params": "",
    }
    return HttpRequestNode(NodeSpec("http", "http-request", "HTTP", "1", {**base, **data}, **spec))


async def run(
    http_node: HttpRequestNode,
    transport: FakeTransport | None = None,
    files: FakeFiles | None = None,
    settings: Any = SETTINGS,
) -> NodeResult:
    ports = Ports(VirtualClock(), SeqIds(), http=transport, files=files)
    ctx = RunContext("run-1", "workflow", ports, settings)
    try:
        prepared = http_node.prepare(pool(), ctx)
    except NodeError as exc:
        return NodeResult.failure(exc.message, exc.error_type)
    return await http_node.run(prepared, ctx)


async def test_scenario_21_exact_request_and_outputs() -> None:
    transport = FakeTransport([ok(b'{"id": 7}', **{"X-Trace": "t1"})])
    result = await run(
        node(
            {
                "url": "https://api.test/{{#start.p#}}",
                "params": "a:1\na:2\n:skipped",
                "headers": "X-K:{{#env.k#}}",
                "authorization": {
                    "type": "api-key",
                    "config": {"type": "bearer", "api_key": "{{#env.token#}}"},
                },
            }
        ),
        transport,
    )
    request, timeouts, limits = transport.sent[0]
    assert request == HttpRequest(
        method="GET",
        url="https://api.test/items",
        params=(("a", "1"), ("a", "2")),
        headers=(("X-K", "k-value-123456"), ("Authorization", "Bearer secret-token")),
        content=None,
        ssl_verify=True,
    )
    assert timeouts == HttpTimeouts(10, 600, 600)
    assert limits == HttpLimits(max_body_bytes=10 * 1024 * 1024, max_redirects=20)
    assert result.status == SUCCEEDED and result.error is None
    assert result.outputs == {
        "status_code": 200,
        "body": '{"id": 7}',
        "headers": {"content-type": "application/json", "x-trace": "t1"},
        "files": [],
    }
    assert result.process_data == {
        "request": "GET /items?a=1&a=2 HTTP/1.1\r\n"
        "Host: api.test\r\n"
        "X-K: k-valu************56\r\n"
        "Authorization: *******************\r\n"
        "\r\n"
    }


async def test_non_2xx_succeeds_unless_error_strategy_or_retry() -> None:
    """Q8."""
    result = await run(node({}), FakeTransport([ok(b"missing", 404)]))
    assert result.status == SUCCEEDED and result.outputs["status_code"] == 404
    for spec in ({"error_strategy": "default-value"}, {"retry": RetryConfig(True, 2, 100)}):
        result = await run(node({}, **spec), FakeTransport([ok(b"missing", 404)]))
        assert result.status == FAILED
        assert (result.error, result.error_type) == (
            "Request failed with status code 404",
            "HTTPResponseCodeError",
        )
        assert result.outputs["status_code"] == 404 and result.outputs["body"] == "missing"


@pytest.mark.parametrize(
    ("config", "header", "value"),
    [
        (
            {"type": "basic", "api_key": "user:pass"},
            "Authorization",
            "Basic " + base64.b64encode(b"user:pass").decode(),
        ),
        ({"type": "basic", "api_key": "dXNlcjpwYXNz"}, "Authorization", "Basic dXNlcjpwYXNz"),
        ({"type": "bearer", "api_key": "tok", "header": "X-Auth"}, "X-Auth", "Bearer tok"),
        ({"type": "custom", "api_key": "raw-key", "header": "X-Api-Key"}, "X-Api-Key", "raw-key"),
    ],
)
async def test_api_key_kinds(config: dict[str, str], header: str, value: str) -> None:
    transport = FakeTransport()
    result = await run(
        node(
            {
                "headers": "x-api-key: user-set\nAccept: */*",
                "authorization": {"type": "api-key", "config": config},
            }
        ),
        transport,
    )
    headers = dict(transport.sent[0][0].headers)
    assert headers[header] == value
    assert f"{header}: {'*' * len(value)}\r\n" in result.process_data["request"]
    assert "Accept: */*\r\n" in result.process_data["request"]


async def test_authorization_errors() -> None:
    empty = await run(
        node({"authorization": {"type": "api-key", "config": {"type": "bearer", "api_key": " "}}})
    )
    assert empty.error_type == "AuthorizationConfigError"
    assert (
        empty.error == "API key is required for authorization but was empty. Please provide a valid API key."
    )
    missing = await run(node({"authorization": {"type": "api-key"}}))
    assert (missing.error, missing.error_type) == (
        "authorization config is required",
        "AuthorizationConfigError",
    )


async def test_url_errors() -> None:
    assert (await run(node({"url": "ftp://x.test/"}))).error == "url should start with http:// or https://"
    result = await run(node({"url": "{{#nope.x#}}"}), FakeTransport())
    assert (result.error, result.error_type) == (
        "url should start with http:// or https://",
        "InvalidURLError",
    )
    assert (await run(node({"url": ""}))).error == "url is required"


async def test_options_method_fails_at_run() -> None:
    """Q19: accepted at import, fails when it runs, with the request logged."""
    transport = FakeTransport()
    result = await run(node({"method": "options"}), transport)
    assert (result.error, result.error_type) == ("Invalid http method options", "InvalidHttpMethodError")
    assert result.process_data["request"].startswith("OPTIONS / HTTP/1.1\r\n")
    assert transport.sent == []
    assert HttpRequestNode.import_warnings({"method": "OPTIONS"})
    assert not HttpRequestNode.import_warnings({"method": "post"})


async def test_headers_resolve_before_parsing_and_later_keys_win() -> None:
    values = pool()
    values.set("start", "h", "A: 1\nB: 2")
    http_node = node({"headers": "{{#start.h#}}\nA: 3\nbroken-line"})
    transport = FakeTransport()
    ctx = RunContext("r", "workflow", Ports(VirtualClock(), SeqIds(), http=transport), SETTINGS)
    await http_node.run(http_node.prepare(values, ctx), ctx)
    assert transport.sent[0][0].headers == (("A", "3"), ("B", "2"), ("broken-line", ""))


async def test_raw_text_and_json_bodies() -> None:
    transport = FakeTransport()
    await run(node({"method": "post", "body": {"type": "raw-text", "data": "hi {{#start.p#}}"}}), transport)
    raw = transport.sent[0][0]
    assert raw.content == b"hi items" and ("Content-Type", "text/plain") in raw.headers

    text = '{"name": "{{#start.p#}}", "tags": [1, 2,],'
    result = await run(
        node(
            {
                "method": "post",
                "headers": "content-type: application/vnd+json",
                "body": {"type": "json", "data": [{"type": "text", "value": text}]},
            }
        ),
        transport,
    )
    sent = transport.sent[1][0]
    assert sent.content == b'{"name":"items","tags":[1,2]}'
    assert dict(sent.headers) == {"content-type": "application/vnd+json"}
    assert result.process_data["request"].endswith("\r\n\r\n" + text.replace("{{#start.p#}}", "items"))

    bad = await run(node({"method": "post", "body": {"type": "json", "data": '{"a": nope}'}}), transport)
    assert (bad.error, bad.error_type) == ('Failed to parse JSON: {"a": nope}', "RequestBodyError")
    two = await run(
        node({"body": {"type": "raw-text", "data": [{"type": "text"}, {"type": "text"}]}}), transport
    )
    assert (two.error, two.error_type) == (
        "raw-text body type should have exactly one item",
        "RequestBodyError",
    )


async def test_urlencoded_body() -> None:
    transport = FakeTransport()
    data = [
        {"key": "q", "type": "text", "value": "{{#start.name#}}"},
        {"key": "k", "type": "text", "value": "{{#env.k#}}"},
    ]
    result = await run(
        node({"method": "post", "body": {"type": "x-www-form-urlencoded", "data": data}}), transport
    )
    sent = transport.sent[0][0]
    assert sent.content == b"q=Ada+%22the+first%22&k=k-value-123456"
    assert ("Content-Type", "application/x-www-form-urlencoded") in sent.headers
    assert result.process_data["request"].endswith(
        "q=Ada+%22the+first%22&k=k-valu%2A%2A%2A%2A%2A%2A%2A%2A%2A%2A%2A%2A56"
    )


async def test_form_data_with_files() -> None:
    transport = FakeTransport()
    files = FakeFiles({"f1": b"hello", "f2": b"a,b\n"})
    data = [
        {"key": "name", "type": "text", "value": "{{#start.p#}}"},
        {"key": "doc", "type": "file", "file": ["start", "docs"]},
    ]
    result = await run(
        node(
            {
                "method": "post",
                "headers": "Content-Type: text/plain",
                "body": {"type": "form-data", "data": data},
            }
        ),
        transport,
        files,
    )
    sent = transport.sent[0][0]
    boundary = "----WebKitFormBoundary8000000000000001"  # from SeqIds' first id
    assert dict(sent.headers) == {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    assert (
        sent.content
        == (
            f'--{boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\nitems\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="doc"; filename="a.txt"\r\n'
            "Content-Type: text/plain\r\n\r\nhello\r\n"
            f'--{boundary}\r\nContent-Disposition: form-data; name="doc"; filename="b.csv"\r\n'
            "Content-Type: text/csv\r\n\r\na,b\n\r\n"
            f"--{boundary}--\r\n"
        ).encode()
    )
    log = result.process_data["request"]
    assert "<file_content_binary: 'a.txt', type='text/plain', size=5 bytes>" in log
    assert f"Content-Type: multipart/form-data; boundary={boundary}\r\n" in log


async def test_binary_body_reads_the_file_through_the_file_store() -> None:
    transport = FakeTransport()
    body = {"type": "binary", "data": [{"type": "file", "file": ["start", "doc"]}]}
    result = await run(node({"method": "put", "body": body}), transport, FakeFiles({"f1": b"\x00\x01bytes"}))
    sent = transport.sent[0][0]
    assert sent.method == "PUT" and sent.content == b"\x00\x01bytes" and sent.headers == ()
    assert result.process_data["request"].endswith("Content-Length: 30\r\n\r\n<binary_content: size=7 bytes>")
    missing = {"type": "binary", "data": [{"type": "file", "file": ["start", "nope"]}]}
    result = await run(node({"body": missing}), transport)
    assert (result.error, result.error_type) == (
        "cannot fetch file with selector ['start', 'nope']",
        "FileFetchError",
    )


async def test_transport_errors_keep_their_dify_names() -> None:
    error = HttpRequestError("Access to 127.0.0.1 (127.0.0.1) is blocked", "RequestBlockedError")
    result = await run(node({"url": "http://127.0.0.1:8080/"}), FakeTransport([error]))
    assert (result.error, result.error_type) == (
        "Access to 127.0.0.1 (127.0.0.1) is blocked",
        "RequestBlockedError",
    )
    assert result.process_data["request"].startswith("GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n")


async def test_response_size_limits_for_text_and_files() -> None:
    small = SimpleNamespace(**{**vars(SETTINGS), "http_max_text_bytes": 10, "http_max_file_bytes": 30})
    result = await run(
        node({}), FakeTransport([ok(b"x" * 20, **{"Content-Type": "text/plain"})]), settings=small
    )
    assert result.error_type == "ResponseSizeError"
    assert result.error == "Text size is too large, max size is 0.00 MB, but current size is 20 bytes."
    png = ok(b"\x89PNG" + b"\x00" * 16, **{"Content-Type": "image/png"})
    files = FakeFiles()
    result = await run(node({"url": "https://api.test/logo.png?x=1"}), FakeTransport([png]), files, small)
    assert result.status == SUCCEEDED and files.saved == [(png.content, "logo.png", "image/png")]
    assert result.outputs["body"] == "" and result.outputs["files"][0]["filename"] == "logo.png"


async def test_attachment_is_a_file_named_by_its_disposition() -> None:
    files = FakeFiles()
    response = ok(
        b"%PDF-1.4",
        **{
            "Content-Type": "application/octet-stream",
            "Content-Disposition": 'attachment; filename="report.pdf"',
        },
    )
    result = await run(node({}), FakeTransport([response]), files)
    assert files.saved == [(b"%PDF-1.4", "report.pdf", "application/pdf")]
    assert len(result.outputs["files"]) == 1


async def test_text_decoding_uses_the_charset() -> None:
    body = "café".encode("latin-1")
    result = await run(node({}), FakeTransport([ok(body, **{"Content-Type": "text/plain; charset=latin-1"})]))
    assert result.outputs["body"] == "café"


async def test_timeouts_and_ssl_verify() -> None:
    transport = FakeTransport()
    await run(node({"timeout": {"connect": 3, "read": 0, "write": None}, "ssl_verify": False}), transport)
    request, timeouts, _ = transport.sent[0]
    assert timeouts == HttpTimeouts(3, 600, 600) and request.ssl_verify is False


async def test_port_missing_fails_service_not_configured() -> None:
    result = await run(node({}), None)
    assert (result.error, result.error_type) == (
        "HTTP requests is not configured",
        "ServiceNotConfiguredError",
    )


def test_import_checks_and_selectors() -> None:
    assert HttpRequestNode.check_data(node({}).spec.data) == []
    problems = HttpRequestNode.check_data({"method": "trace", "url": 1, "authorization": {"type": "x"}})
    assert [loc for loc, _ in problems] == [("method",), ("url",), ("authorization", "type")]
    data = {
        "url": "https://x/{{#start.p#}}",
        "headers": "A: {{#env.k#}}",
        "body": {"type": "form-data", "data": [{"key": "f", "type": "file", "file": ["start", "doc"]}]},
    }
    assert list(HttpRequestNode.read_selectors(data)) == [
        (("url",), ["start", "p"]),
        (("headers",), ["env", "k"]),
        (("body", "data", 0, "file"), ["start", "doc"]),
    ]


DSL = """
version: 0.6.0
kind: app
app: {name: h, mode: workflow}
workflow:
  graph:
    nodes:
      - id: start
        data: {type: start, title: S, variables: [{variable: p, label: p, type: text-input, required: true}]}
      - id: http
        data:
          type: http-request
          title: H
          method: get
          url: https://api.test/{{#start.p#}}
          authorization: {type: no-auth}
          headers: ''
          params: ''
          error_strategy: default-value
          default_value: [{key: body, type: string, value: fallback}]
      - id: end
        data:
          type: end
          title: E
          outputs:
            - {variable: b, value_selector: [http, body]}
            - {variable: s, value_selector: [http, status_code]}
    edges:
      - {source: start, target: http}
      - {source: http, target: end}
"""


async def test_scenario_21_default_value_turns_404_into_an_exception() -> None:
    from sluice.engine import Engine, EngineSettings, RunInput, load_dsl

    loaded = load_dsl(DSL)
    assert loaded.graph is not None, loaded.findings
    transport = FakeTransport([ok(b"nope", 404, **{"Content-Type": "text/plain"})])
    engine = Engine(loaded.graph, Ports(VirtualClock(), SeqIds(), http=transport), EngineSettings())
    events = [event async for event in engine.run(RunInput("r1", {"p": "x"}))]
    exception = next(e for e in events if e.kind == "node_exception")
    assert exception.data["result"]["outputs"] == {
        "body": "fallback",
        "error_message": "Request failed with status code 404",
        "error_type": "HTTPResponseCodeError",
    }
    assert events[-1].kind == "run_partial_succeeded"
    assert events[-1].data["outputs"] == {"b": "fallback", "s": None}

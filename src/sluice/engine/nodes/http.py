"""http-request (§4.5): resolves the request in the apply loop, sends it through ``HttpTransport``.

Everything the request reads from the pool is resolved in ``prepare`` (twice: the real text and a
log copy whose secrets are masked); ``run`` reads body files through ``FileStore``, encodes the
body, sends, and turns the response into ``status_code``/``body``/``headers``/``files``.
``process_data.request`` is the raw request text with the authorization value starred out.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from sluice.engine.nodes.base import FAILED, Loc, Node, NodeError, NodeResult, Problems, RunContext
from sluice.engine.nodes.http_body import (
    BODY_CONTENT_TYPES,
    BodyItem,
    build_body,
    describe_response,
    repair_json,
)
from sluice.engine.pool import VariablePool
from sluice.engine.ports import HttpLimits, HttpRequest, HttpRequestError, HttpTimeouts
from sluice.engine.template import parse, selectors
from sluice.engine.values import ABSENT, Secret, is_file, render_text

METHODS = ("get", "post", "put", "patch", "delete", "head", "options")
SENDABLE = frozenset({"get", "post", "put", "patch", "delete", "head"})  # Q19: options fails at run
BODY_TYPES = ("none", "form-data", "x-www-form-urlencoded", "raw-text", "json", "binary")
CAPABILITY = "HTTP requests"


def _render(template: str, pool: VariablePool, *, log: bool) -> str:
    """Text rendering (§3.3); the log copy shows secrets masked (§3.5)."""
    out: list[str] = []
    for part in parse(template):
        value = pool.get(part.selector) if part.selector is not None else ABSENT
        if value is ABSENT:
            out.append(part.text)
        elif log and isinstance(value, Secret):
            out.append(value.masked())
        else:
            out.append(render_text(value))
    return "".join(out)


def _headers(text: str) -> dict[str, str]:
    """One ``key:value`` per line; later keys win."""
    parsed: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        key, *value = line.split(":", 1)
        if key.strip():
            parsed[key.strip()] = value[0].strip() if value else ""
    return parsed


def _seconds(value: Any, default: Any) -> float:
    """A node timeout in seconds; falsy or unreadable values take the default."""
    try:
        return float(value) if value else float(default)
    except (TypeError, ValueError):
        return float(default)


def _body_items(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    data = body.get("data")
    if not data:
        return []
    if isinstance(data, str):
        return [{"key": "", "type": "text", "value": data}]
    return [item for item in data if isinstance(item, Mapping)]


@dataclass(slots=True)
class Prepared:
    method: str
    url: str
    log_url: str
    params: list[tuple[str, str]]
    log_params: list[tuple[str, str]]
    headers: dict[str, str]
    log_headers: dict[str, str]
    auth: tuple[str, str] | None
    body_type: str | None
    items: list[BodyItem] = field(default_factory=list)
    timeouts: HttpTimeouts = field(default_factory=HttpTimeouts)
    ssl_verify: bool = True


class HttpRequestNode(Node):
    type = "http-request"
    inline = False

    # -- import-time checks ---------------------------------------------------------------------

    @classmethod
    def check_data(cls, data: Mapping[str, Any]) -> Problems:
        problems: Problems = []
        method = data.get("method")
        if (
            not isinstance(method, str)
            or method.lower() not in METHODS
            or method
            not in (
                method.lower(),
                method.upper(),
            )
        ):
            problems.append((("method",), f"method must be one of {', '.join(METHODS)}"))
        if not isinstance(data.get("url"), str):
            problems.append((("url",), "url must be a string"))
        auth = data.get("authorization")
        if not isinstance(auth, Mapping) or auth.get("type") not in ("no-auth", "api-key"):
            problems.append((("authorization", "type"), "authorization type must be no-auth or api-key"))
        elif auth.get("type") == "api-key":
            config = auth.get("config")
            if not isinstance(config, Mapping) or config.get("type") not in ("basic", "bearer", "custom"):
                problems.append(
                    (("authorization", "config"), "api-key config type must be basic, bearer or custom")
                )
        for key in ("headers", "params"):
            if not isinstance(data.get(key, ""), str):
                problems.append(((key,), f"{key} must be a string"))
        body = data.get("body")
        if body is not None and (not isinstance(body, Mapping) or body.get("type") not in BODY_TYPES):
            problems.append((("body", "type"), f"body type must be one of {', '.join(BODY_TYPES)}"))
        timeout = data.get("timeout")
        if timeout is not None and not isinstance(timeout, Mapping):
            problems.append((("timeout",), "timeout must be a mapping"))
        return problems

    @classmethod
    def import_warnings(cls, data: Mapping[str, Any]) -> Problems:
        """``node.http_method_options`` (Q19): accepted, but the request fails when it runs."""
        if str(data.get("method", "")).lower() == "options":
            return [(("method",), "method options is accepted but fails at run: Invalid http method options")]
        return []

    @classmethod
    def read_selectors(cls, data: Mapping[str, Any]) -> Iterator[tuple[Loc, Any]]:
        for key in ("url", "headers", "params"):
            for selector in selectors(str(data.get(key) or "")):
                yield (key,), list(selector)
        body = data.get("body")
        if not isinstance(body, Mapping):
            return
        for i, item in enumerate(_body_items(body)):
            for key in ("key", "value"):
                for selector in selectors(str(item.get(key) or "")):
                    yield ("body", "data", i, key), list(selector)
            is_file_item = item.get("type") == "file" or body.get("type") == "binary"
            if is_file_item and item.get("file"):  # an unset file fails at run, as in Dify
                yield ("body", "data", i, "file"), item.get("file")

    # -- run ------------------------------------------------------------------------------------

    def prepare(self, pool: VariablePool, ctx: RunContext) -> Prepared:
        data = self.spec.data
        auth = self._authorization(pool)
        url = _render(str(data.get("url") or ""), pool, log=False)
        if not url:
            raise NodeError("url is required", "InvalidURLError")
        if not url.startswith(("http://", "https://")):
            raise NodeError("url should start with http:// or https://", "InvalidURLError")
        params: list[tuple[str, str]] = []
        log_params: list[tuple[str, str]] = []
        for line in str(data.get("params") or "").splitlines():
            if not (line := line.strip()):
                continue
            key, *value = line.split(":", 1)
            if not (key := key.strip()):
                continue
            text = value[0].strip() if value else ""
            params.append((_render(key, pool, log=False), _render(text, pool, log=False)))
            log_params.append((_render(key, pool, log=True), _render(text, pool, log=True)))
        headers_text = str(data.get("headers") or "")
        body = data.get("body") if isinstance(data.get("body"), Mapping) else None
        settings = ctx.settings
        raw_timeout = data.get("timeout")
        timeout: Mapping[str, Any] = raw_timeout if isinstance(raw_timeout, Mapping) else {}
        return Prepared(
            method=str(data.get("method") or "get"),
            url=url,
            log_url=_render(str(data.get("url") or ""), pool, log=True),
            params=params,
            log_params=log_params,
            headers=_headers(_render(headers_text, pool, log=False)),
            log_headers=_headers(_render(headers_text, pool, log=True)),
            auth=auth,
            body_type=str(body.get("type")) if body else None,
            items=self._items(body, pool) if body else [],
            timeouts=HttpTimeouts(
                connect=_seconds(timeout.get("connect"), getattr(settings, "http_connect_timeout_s", 10)),
                read=_seconds(timeout.get("read"), getattr(settings, "http_read_timeout_s", 600)),
                write=_seconds(timeout.get("write"), getattr(settings, "http_write_timeout_s", 600)),
            ),
            ssl_verify=data.get("ssl_verify") is not False,
        )

    def _authorization(self, pool: VariablePool) -> tuple[str, str] | None:
        auth = self.spec.data.get("authorization")
        if not isinstance(auth, Mapping) or auth.get("type") != "api-key":
            return None
        config = auth.get("config")
        if not isinstance(config, Mapping):
            raise NodeError("authorization config is required", "AuthorizationConfigError")
        key = _render(str(config.get("api_key") or ""), pool, log=False)
        if not key.strip():
            raise NodeError(
                "API key is required for authorization but was empty. Please provide a valid API key.",
                "AuthorizationConfigError",
            )
        header = str(config.get("header") or "") or "Authorization"
        kind = config.get("type")
        if kind == "bearer":
            return header, f"Bearer {key}"
        if kind == "basic":
            encoded = base64.b64encode(key.encode()).decode() if ":" in key else key
            return header, f"Basic {encoded}"
        return header, key

    def _items(self, body: Mapping[str, Any], pool: VariablePool) -> list[BodyItem]:
        kind = body.get("type")
        raw = _body_items(body)
        if kind in ("raw-text", "json", "binary") and len(raw) != 1:
            raise NodeError(f"{kind} body type should have exactly one item", "RequestBodyError")
        items: list[BodyItem] = []
        for item in raw:
            file_item = kind == "binary" or (kind == "form-data" and item.get("type") == "file")
            files: list[dict[str, Any]] = []
            if file_item:
                selector = item.get("file") or []
                value = pool.get(selector) if isinstance(selector, list) else ABSENT
                if isinstance(value, dict) and is_file(value):
                    files = [value]
                elif isinstance(value, list):
                    files = [v for v in value if is_file(v)]
                if kind == "binary" and len(files) != 1:
                    raise NodeError(f"cannot fetch file with selector {list(selector)}", "FileFetchError")
            key, value_text = str(item.get("key") or ""), str(item.get("value") or "")
            items.append(
                BodyItem(
                    key=_render(key, pool, log=False),
                    log_key=_render(key, pool, log=True),
                    value="" if file_item else _render(value_text, pool, log=False),
                    log_value="" if file_item else _render(value_text, pool, log=True),
                    files=files,
                )
            )
        if kind == "json":
            try:
                items[0].parsed = repair_json(items[0].value)
            except ValueError as exc:
                raise NodeError(f"Failed to parse JSON: {items[0].value}", "RequestBodyError") from exc
        return items

    async def run(self, prepared: Prepared, ctx: RunContext) -> NodeResult:
        http = ctx.ports.http
        if http is None:
            return NodeResult.failure(f"{CAPABILITY} is not configured", "ServiceNotConfiguredError")
        contents: dict[int, list[bytes]] = {}
        for index, item in enumerate(prepared.items):
            if item.files:
                if ctx.ports.files is None:
                    return NodeResult.failure("File store is not configured", "ServiceNotConfiguredError")
                try:
                    contents[index] = [await ctx.ports.files.read(f) for f in item.files]
                except Exception as exc:
                    return NodeResult.failure(f"Error downloading file: {exc}", "FileFetchError")
        boundary = "----WebKitFormBoundary" + ctx.ports.ids.new("multipart_boundary").replace("-", "")[-16:]
        try:
            body = build_body(prepared.body_type, prepared.items, contents, boundary)
        except ValueError as exc:
            return NodeResult.failure(str(exc), "RequestBodyError")
        headers = self._assemble(prepared.headers, prepared.auth, body.content_type, prepared.body_type)
        log_headers = self._assemble(
            prepared.log_headers, prepared.auth, body.content_type, prepared.body_type
        )
        process_data = {"request": self._log(prepared, log_headers, body.log)}
        if prepared.method.lower() not in SENDABLE:
            return NodeResult.failure(
                f"Invalid http method {prepared.method}", "InvalidHttpMethodError", process_data=process_data
            )
        settings = ctx.settings
        max_text = int(getattr(settings, "http_max_text_bytes", 1024 * 1024))
        max_file = int(getattr(settings, "http_max_file_bytes", 10 * 1024 * 1024))
        request = HttpRequest(
            method=prepared.method.upper(),
            url=prepared.url,
            params=tuple(prepared.params),
            headers=tuple(headers.items()),
            content=body.content,
            ssl_verify=prepared.ssl_verify,
        )
        limits = HttpLimits(
            max_body_bytes=max(max_text, max_file),
            max_redirects=int(getattr(settings, "http_max_redirects", 20)),
        )
        try:
            response = await http.send(request, prepared.timeouts, limits)
        except HttpRequestError as exc:
            return NodeResult.failure(exc.message, exc.error_type, process_data=process_data)
        described = describe_response(response, prepared.url)
        threshold = max_file if described.is_file else max_text
        if len(response.content) > threshold:
            return NodeResult.failure(
                described.size_error(threshold), "ResponseSizeError", process_data=process_data
            )
        files: list[dict[str, Any]] = []
        if described.is_file:
            if ctx.ports.files is None:
                return NodeResult.failure("File store is not configured", "ServiceNotConfiguredError")
            files.append(
                await ctx.ports.files.save(response.content, described.filename, described.mime_type)
            )
        outputs = {
            "status_code": response.status_code,
            "body": "" if files else described.text,
            "headers": described.headers,
            "files": files,
        }
        if not 200 <= response.status_code < 300 and (self.spec.error_strategy or self.spec.retry.enabled):
            return NodeResult(
                status=FAILED,
                outputs=outputs,
                process_data=process_data,
                error=f"Request failed with status code {response.status_code}",
                error_type="HTTPResponseCodeError",
            )
        return NodeResult(outputs=outputs, process_data=process_data)

    @staticmethod
    def _assemble(
        headers: Mapping[str, str],
        auth: tuple[str, str] | None,
        content_type: str | None,
        body_type: str | None,
    ) -> dict[str, str]:
        """User headers, then the authorization header, then the body's Content-Type (§4.5)."""
        out = dict(headers)
        if auth is not None:
            for key in [k for k in out if k.lower() == auth[0].lower()]:
                del out[key]
            out[auth[0]] = auth[1]
        has_type = any(k.lower() == "content-type" for k in out)
        if body_type == "form-data":
            for key in [k for k in out if k.lower() == "content-type"]:
                del out[key]
            has_type = False
        if content_type and not has_type and (body_type == "form-data" or body_type in BODY_CONTENT_TYPES):
            out["Content-Type"] = content_type
        return out

    def _log(self, prepared: Prepared, headers: Mapping[str, str], body: str) -> str:
        parts = urlsplit(prepared.log_url)
        query = "&".join(q for q in (parts.query, urlencode(prepared.log_params)) if q)
        path = (parts.path or "/") + (f"?{query}" if query else "")
        lines = [f"{prepared.method.upper()} {path} HTTP/1.1", f"Host: {parts.netloc}"]
        masked = prepared.auth[0].lower() if prepared.auth else None
        for key, value in headers.items():
            lines.append(f"{key}: {'*' * len(value) if key.lower() == masked else value}")
        if body:
            lines.append(f"Content-Length: {len(body)}")
        return "\r\n".join(lines) + "\r\n\r\n" + body

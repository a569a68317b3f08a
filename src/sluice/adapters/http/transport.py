"""``GuardedHttpTransport``: the engine's ``HttpTransport`` port on httpx, behind the SSRF guard.

httpx does the HTTP (request encoding, redirects up to the limit, decompression); every TCP
connection it opens goes through ``GuardedBackend``, which resolves the host itself, vets each
address with ``SsrfPolicy`` and connects to the vetted address. TLS still verifies (and sends SNI
for) the host name of the URL, because httpcore starts TLS with the origin's host. Redirects need
no special case: each new origin opens a new connection, which is vetted in turn. Environment
proxies and ``.netrc`` are ignored (a proxy would make the check meaningless), and each request
gets a fresh cookie jar; the connection pools are shared.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import AsyncIterable, AsyncIterator, Iterable

import httpcore
import httpx

from sluice.adapters.http.guard import RequestBlocked, SsrfPolicy
from sluice.engine.ports import HttpLimits, HttpRequest, HttpRequestError, HttpResponse, HttpTimeouts

_ERRORS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
)


def _as_httpx(exc: Exception, request: httpx.Request) -> Exception:
    for core_type, httpx_type in _ERRORS:
        if isinstance(exc, core_type):
            return httpx_type(str(exc) or type(exc).__name__, request=request)
    return exc


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves, vets, then connects to the vetted address (first one that answers)."""

    def __init__(self, policy: SsrfPolicy) -> None:
        self._policy = policy
        self._inner = httpcore.AnyIOBackend()

    async def _addresses(self, host: str, port: int, timeout: float | None) -> list[str]:
        try:
            ipaddress.ip_address(host.split("%", 1)[0])
            return [host]
        except ValueError:
            pass
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"Timed out resolving {host}") from exc
        except OSError as exc:
            raise httpcore.ConnectError(f"Cannot resolve {host}: {exc}") from exc
        addresses: list[str] = []
        for info in infos:
            address = str(info[4][0])
            if address not in addresses:
                addresses.append(address)
        return addresses

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self._addresses(host, port, timeout)
        for address in addresses:  # every answer is vetted: one bad address refuses the host
            self._policy.check(host, address)
        error: Exception = httpcore.ConnectError(f"No address for {host}")
        for address in addresses:
            try:
                return await self._inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                error = exc
        raise error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("Unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _BodyStream(httpx.AsyncByteStream):
    def __init__(self, stream: Iterable[bytes] | AsyncIterable[bytes], request: httpx.Request) -> None:
        self._stream = stream
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        assert isinstance(self._stream, AsyncIterable)
        try:
            async for part in self._stream:
                yield part
        except Exception as exc:
            mapped = _as_httpx(exc, self._request)
            if mapped is exc:
                raise
            raise mapped from exc

    async def aclose(self) -> None:
        closer = getattr(self._stream, "aclose", None)
        if closer is not None:
            await closer()


class _PoolTransport(httpx.AsyncBaseTransport):
    """An httpx transport over one guarded httpcore pool. ``aclose`` is a no-op so that the
    short-lived clients sharing it cannot close it; ``shutdown`` really closes it."""

    def __init__(self, policy: SsrfPolicy, verify: bool) -> None:
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify),
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=GuardedBackend(policy),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        try:
            response = await self._pool.handle_async_request(core_request)
        except Exception as exc:
            mapped = _as_httpx(exc, request)
            if mapped is exc:
                raise
            raise mapped from exc
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_BodyStream(response.stream, request),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        return None

    async def shutdown(self) -> None:
        await self._pool.aclose()


class GuardedHttpTransport:
    """The ``HttpTransport`` port: one request (redirects followed), body capped by the limits."""

    def __init__(self, policy: SsrfPolicy | None = None) -> None:
        self.policy = policy or SsrfPolicy()
        self._pools: dict[bool, _PoolTransport] = {}

    def _pool(self, verify: bool) -> _PoolTransport:
        if verify not in self._pools:
            self._pools[verify] = _PoolTransport(self.policy, verify)
        return self._pools[verify]

    async def send(self, request: HttpRequest, timeouts: HttpTimeouts, limits: HttpLimits) -> HttpResponse:
        timeout = httpx.Timeout(
            connect=timeouts.connect, read=timeouts.read, write=timeouts.write, pool=timeouts.connect
        )
        client = httpx.AsyncClient(
            transport=self._pool(request.ssl_verify),
            follow_redirects=True,
            max_redirects=limits.max_redirects,
            trust_env=False,
            timeout=timeout,
        )
        try:
            async with client:
                return await _exchange(client, request, limits)
        except RequestBlocked as exc:
            raise HttpRequestError(str(exc), "RequestBlockedError") from exc
        except httpx.InvalidURL as exc:
            raise HttpRequestError(str(exc), "InvalidURLError") from exc
        except httpx.HTTPError as exc:
            raise HttpRequestError(str(exc) or type(exc).__name__) from exc
        except (UnicodeError, ValueError) as exc:
            raise HttpRequestError(str(exc)) from exc

    async def aclose(self) -> None:
        pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            await pool.shutdown()


def _size_error(limit: int, got: str) -> HttpRequestError:
    return HttpRequestError(
        f"Response size is too large, max size is {limit / 1024 / 1024:.2f} MB, but current size is {got}.",
        "ResponseSizeError",
    )


async def _exchange(client: httpx.AsyncClient, request: HttpRequest, limits: HttpLimits) -> HttpResponse:
    async with client.stream(
        request.method,
        request.url,
        params=list(request.params) if request.params else None,
        headers=list(request.headers),
        content=request.content,
    ) as response:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limits.max_body_bytes:
            raise _size_error(limits.max_body_bytes, f"{int(declared)} bytes")
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body.extend(chunk)
            if len(body) > limits.max_body_bytes:
                raise _size_error(limits.max_body_bytes, f"more than {limits.max_body_bytes} bytes")
        return HttpResponse(
            status_code=response.status_code,
            headers=tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in response.headers.raw),
            content=bytes(body),
            url=str(response.url),
        )

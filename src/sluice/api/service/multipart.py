"""A streaming ``multipart/form-data`` reader for ``POST /v1/files/upload`` (service-api §5.4).

The body is read chunk by chunk from the ASGI stream and never held whole: part contents come out
as they arrive, and the caller decides where they go (a temporary file, a small field buffer, or
nowhere). The reader counts every byte and stops at ``max_body``, so an endless or oversized body
costs no more than the cap. Only what uploads need is parsed: ``Content-Disposition`` ``name`` and
``filename`` (RFC 7578; ``filename*`` per RFC 5987) and ``Content-Type``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import unquote

HEADER_LIMIT = 16 * 1024


class MultipartError(Exception):
    """The body is not well-formed multipart."""


class BodyCapExceeded(Exception):
    """The body is larger than the reader's cap."""


@dataclass(slots=True)
class PartHeaders:
    name: str
    filename: str | None
    content_type: str | None


def boundary_of(content_type: str) -> str | None:
    """The boundary of a ``multipart/form-data`` media type, else ``None``."""
    media, _, params = content_type.partition(";")
    if media.strip().lower() != "multipart/form-data":
        return None
    for param in _split_params(params):
        key, _, value = param.partition("=")
        if key.strip().lower() == "boundary":
            value = value.strip().strip('"')
            return value or None
    return None


def _split_params(text: str) -> list[str]:
    """Split ``a=1; b="x;y"`` on semicolons outside quotes."""
    out: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == ";" and not quoted:
            out.append("".join(current))
            current = []
        else:
            current.append(ch)
    out.append("".join(current))
    return [p.strip() for p in out if p.strip()]


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return value


def parse_headers(block: bytes) -> PartHeaders:
    name, filename, content_type = "", None, None
    star_name: str | None = None
    for raw in block.split(b"\r\n"):
        if not raw.strip():
            continue
        key, _, value = raw.decode("utf-8", "replace").partition(":")
        key = key.strip().lower()
        if key == "content-type":
            content_type = value.strip() or None
        elif key == "content-disposition":
            for param in _split_params(value)[1:]:
                pkey, _, pvalue = param.partition("=")
                pkey = pkey.strip().lower()
                if pkey == "name":
                    name = _unquote(pvalue)
                elif pkey == "filename":
                    filename = _unquote(pvalue)
                elif pkey == "filename*":
                    charset, _, rest = _unquote(pvalue).partition("'")
                    _, _, encoded = rest.partition("'")
                    star_name = unquote(encoded, encoding=charset or "utf-8", errors="replace")
    return PartHeaders(name, star_name if star_name is not None else filename, content_type)


class MultipartReader:
    """Yields ``PartHeaders`` then ``bytes`` chunks of that part, for each part in order."""

    def __init__(self, chunks: AsyncIterator[bytes], boundary: str, max_body: int) -> None:
        self._chunks = chunks
        self._delimiter = b"\r\n--" + boundary.encode("latin-1")
        self._max_body = max_body
        self._buffer = bytearray(b"\r\n")  # the first boundary has no CRLF in front of it
        self._read = 0
        self._eof = False

    async def _fill(self) -> bool:
        if self._eof:
            return False
        try:
            chunk = await self._chunks.__anext__()
        except StopAsyncIteration:
            self._eof = True
            return False
        self._read += len(chunk)
        if self._read > self._max_body:
            raise BodyCapExceeded()
        self._buffer.extend(chunk)
        return True

    async def _skip_to_delimiter(self) -> None:
        while True:
            at = self._buffer.find(self._delimiter)
            if at >= 0:
                del self._buffer[: at + len(self._delimiter)]
                return
            keep = len(self._delimiter)
            if len(self._buffer) > keep:
                del self._buffer[:-keep]
            if not await self._fill():
                raise MultipartError("no multipart boundary found")

    async def _need(self, size: int) -> None:
        while len(self._buffer) < size:
            if not await self._fill():
                raise MultipartError("truncated multipart body")

    async def parts(self) -> AsyncIterator[PartHeaders | bytes]:
        await self._skip_to_delimiter()
        while True:
            await self._need(2)
            if self._buffer[:2] == b"--":
                return  # closing delimiter
            end = self._buffer.find(b"\r\n\r\n")
            while end < 0:
                if len(self._buffer) > HEADER_LIMIT:
                    raise MultipartError("part headers too long")
                if not await self._fill():
                    raise MultipartError("truncated part headers")
                end = self._buffer.find(b"\r\n\r\n")
            block = bytes(self._buffer[:end])
            del self._buffer[: end + 4]
            yield parse_headers(block)
            async for data in self._content():
                yield data

    async def _content(self) -> AsyncIterator[bytes]:
        keep = len(self._delimiter)
        while True:
            at = self._buffer.find(self._delimiter)
            if at >= 0:
                if at:
                    yield bytes(self._buffer[:at])
                del self._buffer[: at + keep]
                return
            if len(self._buffer) > keep:
                out = bytes(self._buffer[:-keep])
                del self._buffer[:-keep]
                yield out
            if not await self._fill():
                raise MultipartError("truncated part content")

"""Pure pieces of the upload path: the streaming multipart reader (any chunking gives the same
parts; the body cap holds) and the file-input rule of §7."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from sluice.api.service.multipart import (
    BodyCapExceeded,
    MultipartError,
    MultipartReader,
    PartHeaders,
    boundary_of,
)
from sluice.engine.inputs import file_allowed

BODY = (
    b"--XyZ\r\n"
    b'Content-Disposition: form-data; name="user"\r\n\r\n'
    b"u1\r\n"
    b"--XyZ\r\n"
    b'Content-Disposition: form-data; name="file"; filename="a;b.txt"; '
    b"filename*=UTF-8''r%C3%A9sum%C3%A9.txt\r\n"
    b"Content-Type: text/plain\r\n\r\n"
    b"line one\r\n--Xy\r\n--X\r\nend\r\n"
    b"--XyZ--\r\n"
)


async def chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for at in range(0, len(data), size):
        yield data[at : at + size]


async def parse(data: bytes, size: int, cap: int = 1 << 20) -> list[tuple[PartHeaders, bytes]]:
    parts: list[tuple[PartHeaders, bytes]] = []
    async for item in MultipartReader(chunks(data, size), "XyZ", cap).parts():
        if isinstance(item, PartHeaders):
            parts.append((item, b""))
        else:
            parts[-1] = (parts[-1][0], parts[-1][1] + item)
    return parts


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 4096])
async def test_any_chunking_gives_the_same_parts(size: int) -> None:
    parts = await parse(BODY, size)
    assert [(h.name, h.filename, h.content_type) for h, _ in parts] == [
        ("user", None, None),
        ("file", "résumé.txt", "text/plain"),
    ]
    assert parts[0][1] == b"u1"
    assert parts[1][1] == b"line one\r\n--Xy\r\n--X\r\nend"  # delimiter prefixes are content


async def test_cap_and_malformed_bodies() -> None:
    with pytest.raises(BodyCapExceeded):
        await parse(BODY, 16, cap=40)
    with pytest.raises(MultipartError):
        await parse(b"no boundary here", 4)
    with pytest.raises(MultipartError):
        await parse(BODY[:-20], 5)


def test_boundary_of() -> None:
    assert boundary_of('multipart/form-data; charset=utf-8; boundary="a;b"') == "a;b"
    assert boundary_of("Multipart/Form-Data; boundary=abc") == "abc"
    assert boundary_of("application/json") is None
    assert boundary_of("multipart/form-data") is None


def test_file_allowed_follows_dify() -> None:
    config = {
        "allowed_file_types": ["document", "custom"],
        "allowed_file_extensions": [".md", "TXT"],
        "allowed_file_upload_methods": ["local_file"],
    }
    assert file_allowed(config, "document", ".pdf", "local_file")
    assert not file_allowed(config, "image", ".png", "local_file")
    assert file_allowed(config, "custom", ".txt", "local_file")
    assert not file_allowed(config, "custom", ".exe", "local_file")
    assert not file_allowed(config, "document", ".pdf", "remote_url")
    assert file_allowed({}, "video", ".mp4", "remote_url")

"""``LocalFileStore``: the engine's ``FileStore`` port on a local directory.

Layout under ``<data_dir>/upload_files/``: uploads at ``<tenant_id>/<file_id><ext>`` (service
API §5.4), files the engine creates (HTTP responses) at ``tool_files/<file_id><ext>``. A file
value is found by its ``reference`` when that is a storage key (``upload_files/...``), else by
``related_id`` + ``extension``. Ids and extensions are checked against strict patterns and every
path must stay inside the directory, so a file value fabricated by a code node cannot reach
other files. ``remote_url`` files are downloaded through the SSRF-guarded ``HttpTransport``.
"""

from __future__ import annotations

import asyncio
import mimetypes
import re
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sluice.engine.ports import (
    FileStoreError,
    HttpLimits,
    HttpRequest,
    HttpRequestError,
    HttpTimeouts,
    HttpTransport,
)
from sluice.engine.values import FILE_IDENTITY

UPLOAD_DIR = "upload_files"
TOOL_DIR = "tool_files"
SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
SAFE_EXTENSION = re.compile(r"^(\.[A-Za-z0-9]{1,16})?$")

_TYPES = {
    "image": {".jpg", ".jpeg", ".png", ".webp", ".gif", ".svg"},
    "video": {".mp4", ".mov", ".mpeg", ".webm"},
    "audio": {".mp3", ".m4a", ".wav", ".amr", ".mpga"},
    "document": {
        ".txt", ".markdown", ".md", ".mdx", ".pdf", ".html", ".htm", ".xlsx", ".xls", ".vtt",
        ".properties", ".doc", ".docx", ".csv", ".eml", ".msg", ".pptx", ".ppt", ".xml", ".epub",
        ".json", ".yaml", ".yml",
    },
}  # fmt: skip


def file_type(extension: str, mime_type: str) -> str:
    """Dify's file type by extension, else by the MIME type's main type, else ``custom``."""
    for kind, extensions in _TYPES.items():
        if extension.lower() in extensions:
            return kind
    main = mime_type.split("/", 1)[0]
    return main if main in ("image", "video", "audio") else "custom"


class LocalFileStore:
    def __init__(
        self,
        data_dir: Path,
        http: HttpTransport | None = None,
        *,
        remote_max_bytes: int = 15 * 1024 * 1024,
        remote_timeouts: HttpTimeouts | None = None,
    ) -> None:
        self.root = (Path(data_dir) / UPLOAD_DIR).resolve()
        self._http = http
        self._remote_max_bytes = remote_max_bytes
        self._timeouts = remote_timeouts or HttpTimeouts(connect=10, read=60, write=60)

    def _inside(self, path: Path) -> Path:
        resolved = path.resolve()
        if not resolved.is_relative_to(self.root):
            raise FileStoreError("File is outside the file store")
        return resolved

    def locate(self, file: Mapping[str, Any]) -> Path:
        """The stored path of a ``local_file`` / ``tool_file`` value (it may not exist)."""
        reference = str(file.get("reference") or "")
        if reference.startswith(f"{UPLOAD_DIR}/"):
            return self._inside(self.root.parent / reference)
        file_id = str(file.get("related_id") or reference or file.get("id") or "")
        extension = str(file.get("extension") or "")
        if extension and not extension.startswith("."):
            extension = "." + extension
        if not SAFE_ID.match(file_id) or not SAFE_EXTENSION.match(extension):
            raise FileStoreError(f"Invalid file reference {file_id!r}")
        name = f"{file_id}{extension}"
        if file.get("transfer_method") == "tool_file":
            return self._inside(self.root / TOOL_DIR / name)
        matches = sorted(p for p in self.root.glob(f"*/{name}") if p.parent.name != TOOL_DIR)
        if not matches:
            raise FileStoreError(f"File {name} not found")
        return self._inside(matches[0])

    async def read(self, file: Mapping[str, Any]) -> bytes:
        if file.get("transfer_method") == "remote_url":
            return await self._download(str(file.get("remote_url") or file.get("url") or ""))
        path = await asyncio.to_thread(self.locate, file)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError as exc:
            raise FileStoreError(f"File {path.name} not found") from exc
        except OSError as exc:
            raise FileStoreError(f"Cannot read file {path.name}: {exc.strerror}") from exc

    async def _download(self, url: str) -> bytes:
        if not url:
            raise FileStoreError("Missing URL for remote file")
        if self._http is None:
            raise FileStoreError("HTTP requests are not configured")
        try:
            response = await self._http.send(
                HttpRequest("GET", url), self._timeouts, HttpLimits(max_body_bytes=self._remote_max_bytes)
            )
        except HttpRequestError as exc:
            raise FileStoreError(exc.message) from exc
        if not 200 <= response.status_code < 300:
            raise FileStoreError(f"Request to {url} failed with status code {response.status_code}")
        return response.content

    async def save(self, content: bytes, name: str, mime: str) -> dict[str, Any]:
        file_id = str(uuid.uuid4())
        suffix = Path(name).suffix.lower() if name else ""
        extension = suffix if suffix and SAFE_EXTENSION.match(suffix) else ""
        extension = extension or mimetypes.guess_extension(mime or "") or ".bin"
        path = self.root / TOOL_DIR / f"{file_id}{extension}"

        def write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)

        await asyncio.to_thread(write)
        return {
            "dify_model_identity": FILE_IDENTITY,
            "id": file_id,
            "type": file_type(extension, mime),
            "transfer_method": "tool_file",
            "remote_url": None,
            "reference": f"{UPLOAD_DIR}/{TOOL_DIR}/{file_id}{extension}",
            "related_id": file_id,
            "filename": name or f"{file_id}{extension}",
            "extension": extension,
            "mime_type": mime or "application/octet-stream",
            "size": len(content),
            "url": None,
        }

    # -- uploads (service API §5.4): whole objects by storage key ----------------------------------

    def _key_path(self, key: str) -> Path:
        if not key.startswith(f"{UPLOAD_DIR}/") or ".." in key.split("/"):
            raise FileStoreError(f"Invalid storage key {key!r}")
        return self._inside(self.root.parent / key)

    async def put(self, key: str, source: Path) -> None:
        """Move a finished temporary file into the store under ``key``."""
        target = self._key_path(key)

        def move() -> None:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(source), target)

        await asyncio.to_thread(move)

    async def get(self, key: str) -> bytes:
        path = self._key_path(key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError as exc:
            raise FileStoreError(f"File {path.name} not found") from exc

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._key_path(key).unlink, True)

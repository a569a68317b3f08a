"""``S3FileStore``: the ``FileStore`` port (and the upload storage) on an S3-compatible bucket.

Distributed mode stores uploads here so every replica and worker sees the same bytes. Objects use
the same keys as the local store (``upload_files/<tenant_id>/<file_id>.<ext>``, engine-made files
under ``upload_files/tool_files/``), so a file value's ``reference`` is its object key. boto3 is
synchronous: every call runs in a worker thread. ``remote_url`` files are downloaded through the
SSRF-guarded ``HttpTransport``, exactly as the local store does.
"""

from __future__ import annotations

import asyncio
import mimetypes
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]
from botocore.config import Config  # type: ignore[import-untyped]
from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

from sluice.adapters.files.local import SAFE_EXTENSION, TOOL_DIR, UPLOAD_DIR, file_type
from sluice.engine.ports import (
    FileStoreError,
    HttpLimits,
    HttpRequest,
    HttpRequestError,
    HttpTimeouts,
    HttpTransport,
)
from sluice.engine.values import FILE_IDENTITY


class S3FileStore:
    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        http: HttpTransport | None = None,
        remote_max_bytes: int = 15 * 1024 * 1024,
        address_style: str = "auto",
    ) -> None:
        self.bucket = bucket
        self._client = boto3.client(
            "s3",
            endpoint_url=endpoint_url or None,
            region_name=region or None,
            aws_access_key_id=access_key or None,
            aws_secret_access_key=secret_key or None,
            config=Config(s3={"addressing_style": address_style}, retries={"max_attempts": 3}),
        )
        self._http = http
        self._remote_max_bytes = remote_max_bytes

    @staticmethod
    def _check(key: str) -> str:
        if not key.startswith(f"{UPLOAD_DIR}/") or ".." in key.split("/"):
            raise FileStoreError(f"Invalid storage key {key!r}")
        return key

    async def ensure_bucket(self) -> None:
        """Create the bucket when it is missing (tests and first start)."""

        def run() -> None:
            try:
                self._client.head_bucket(Bucket=self.bucket)
            except ClientError:
                self._client.create_bucket(Bucket=self.bucket)

        await asyncio.to_thread(run)

    async def put(self, key: str, source: Path) -> None:
        """Upload a finished temporary file under ``key``, then remove the temporary file."""
        self._check(key)
        try:
            await asyncio.to_thread(self._client.upload_file, str(source), self.bucket, key)
        except (BotoCoreError, ClientError) as exc:
            raise FileStoreError(f"Cannot store {key}: {exc}") from exc
        finally:
            await asyncio.to_thread(source.unlink, True)

    async def get(self, key: str) -> bytes:
        self._check(key)

        def run() -> bytes:
            body = self._client.get_object(Bucket=self.bucket, Key=key)["Body"]
            try:
                return bytes(body.read())
            finally:
                body.close()

        try:
            return await asyncio.to_thread(run)
        except ClientError as exc:
            raise FileStoreError(f"File {key.rsplit('/', 1)[-1]} not found") from exc
        except BotoCoreError as exc:
            raise FileStoreError(f"Cannot read {key}: {exc}") from exc

    async def delete(self, key: str) -> None:
        self._check(key)
        await asyncio.to_thread(self._client.delete_object, Bucket=self.bucket, Key=key)

    def _key_of(self, file: Mapping[str, Any]) -> str:
        reference = str(file.get("reference") or "")
        if reference.startswith(f"{UPLOAD_DIR}/"):
            return reference
        file_id = str(file.get("related_id") or reference or file.get("id") or "")
        extension = str(file.get("extension") or "")
        if extension and not extension.startswith("."):
            extension = "." + extension
        if file.get("transfer_method") != "tool_file" or not SAFE_EXTENSION.match(extension):
            raise FileStoreError(f"Invalid file reference {file_id!r}")
        return f"{UPLOAD_DIR}/{TOOL_DIR}/{file_id}{extension}"

    async def read(self, file: Mapping[str, Any]) -> bytes:
        if file.get("transfer_method") == "remote_url":
            return await self._download(str(file.get("remote_url") or file.get("url") or ""))
        return await self.get(self._key_of(file))

    async def _download(self, url: str) -> bytes:
        if not url:
            raise FileStoreError("Missing URL for remote file")
        if self._http is None:
            raise FileStoreError("HTTP requests are not configured")
        try:
            response = await self._http.send(
                HttpRequest("GET", url),
                HttpTimeouts(connect=10, read=60, write=60),
                HttpLimits(max_body_bytes=self._remote_max_bytes),
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
        key = f"{UPLOAD_DIR}/{TOOL_DIR}/{file_id}{extension}"
        try:
            await asyncio.to_thread(
                self._client.put_object,
                Bucket=self.bucket,
                Key=key,
                Body=content,
                ContentType=mime or "application/octet-stream",
            )
        except (BotoCoreError, ClientError) as exc:
            raise FileStoreError(f"Cannot store {key}: {exc}") from exc
        return {
            "dify_model_identity": FILE_IDENTITY,
            "id": file_id,
            "type": file_type(extension, mime),
            "transfer_method": "tool_file",
            "remote_url": None,
            "reference": key,
            "related_id": file_id,
            "filename": name or f"{file_id}{extension}",
            "extension": extension,
            "mime_type": mime or "application/octet-stream",
            "size": len(content),
            "url": None,
        }

    async def aclose(self) -> None:
        await asyncio.to_thread(self._client.close)

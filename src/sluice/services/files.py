"""Uploaded files (service-api §5.4) and file references in run inputs (§7).

An upload arrives as a stream: the router asks ``check_name`` before the bytes come, writes them
through an ``UploadSpool`` (counted, hashed, cut at the category limit) and then calls ``store``,
which moves the bytes into the configured storage and inserts the ``upload_files`` row. Run starts
call ``resolve`` to turn ``{"type", "transfer_method", ...}`` objects into the engine's file values,
checking workspace ownership and each variable's allowed types, extensions and upload methods.
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import tempfile
import unicodedata
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlparse

from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from sluice.adapters.sql import chat_repos, repos
from sluice.adapters.sql.tables import UploadFile, utcnow
from sluice.engine.inputs import file_allowed
from sluice.engine.values import FILE_IDENTITY
from sluice.services.apps import AppAuth
from sluice.services.errors import DomainError, InvalidParam, ServiceUnavailable

MB = 1024 * 1024
ANONYMOUS = "DEFAULT-USER"
IMAGE = frozenset({"jpg", "jpeg", "png", "gif", "webp", "svg"})
VIDEO = frozenset({"mp4", "mov", "mpeg", "webm"})
AUDIO = frozenset({"mp3", "m4a", "wav", "amr", "mpga"})
DOCUMENT = frozenset(
    "txt markdown md mdx pdf html htm xlsx xls vtt properties doc docx csv eml msg pptx ppt xml epub".split()
)
FILE_TYPES = ("document", "image", "audio", "video", "custom")
MAX_NAME = 200


class NoFileUploaded(DomainError):
    code = "no_file_uploaded"
    message = "Please upload your file."


class TooManyFiles(DomainError):
    code = "too_many_files"
    message = "Only one file is allowed."


class FilenameMissing(DomainError):
    code = "filename_not_exists_error"
    message = "The specified filename does not exist."


class FileTooLarge(DomainError):
    status = 413
    code = "file_too_large"


class FileStorage(Protocol):
    """Whole objects by storage key (local directory or S3-compatible bucket)."""

    async def put(self, key: str, source: Path) -> None: ...

    async def get(self, key: str) -> bytes: ...

    async def delete(self, key: str) -> None: ...


@dataclass(frozen=True, slots=True)
class UploadLimits:
    file_mb: int = 15
    image_mb: int = 10
    video_mb: int = 100
    audio_mb: int = 50
    per_run: int = 10
    blacklist: frozenset[str] = frozenset()

    @property
    def largest_bytes(self) -> int:
        return max(self.file_mb, self.image_mb, self.video_mb, self.audio_mb) * MB

    def largest(self) -> tuple[str, int]:
        """The category with the largest limit, and that limit in MB."""
        pairs = [("document", self.file_mb), ("image", self.image_mb)]
        pairs += [("video", self.video_mb), ("audio", self.audio_mb)]
        return max(pairs, key=lambda pair: pair[1])

    def category(self, extension: str) -> tuple[str, int]:
        """``(category, limit in MB)`` of an extension (without the dot)."""
        if extension in IMAGE:
            return "image", self.image_mb
        if extension in VIDEO:
            return "video", self.video_mb
        if extension in AUDIO:
            return "audio", self.audio_mb
        return "document", self.file_mb


@dataclass(frozen=True, slots=True)
class UploadName:
    name: str
    extension: str
    category: str
    limit_mb: int


def too_large(size: int, limit_mb: int, category: str) -> FileTooLarge:
    return FileTooLarge(f"File size exceeded. {size} bytes > {limit_mb} MB limit for {category} files.")


class UploadSpool:
    """A temporary file that counts, hashes and caps what is written to it."""

    def __init__(self, directory: Path, name: UploadName) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        fd, path = tempfile.mkstemp(prefix="upload-", dir=directory)
        self.path = Path(path)
        self._file = os.fdopen(fd, "wb")
        self._hash = hashlib.sha256()
        self._limit = name.limit_mb * MB
        self._name = name
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self._limit:
            raise too_large(self.size, self._name.limit_mb, self._name.category)
        self._hash.update(chunk)
        self._file.write(chunk)

    def finish(self) -> str:
        self._file.close()
        return self._hash.hexdigest()

    def discard(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)


class FileRef(BaseModel):
    """A file object of a request (§7); ``remote_url`` is accepted as an alias of ``url``."""

    type: str
    transfer_method: str
    url: str | None = None
    remote_url: str | None = None
    upload_file_id: str | None = None


def guess_mime(name: str, given: str | None) -> str:
    given = (given or "").split(";", 1)[0].strip().lower()
    if given and given != "application/octet-stream":
        return given
    return mimetypes.guess_type(name)[0] or given or "application/octet-stream"


class FileService:
    def __init__(
        self,
        db: async_sessionmaker[AsyncSession],
        storage: FileStorage,
        limits: UploadLimits,
        spool_dir: Path,
    ) -> None:
        self._db = db
        self.storage = storage
        self.limits = limits
        self.spool_dir = spool_dir

    # -- upload ---------------------------------------------------------------------------------------

    def check_name(self, filename: str) -> UploadName:
        """Rules 4-5 of §5.4 and the size category of rule 6."""
        if not filename:
            raise FilenameMissing()
        if any(ch in "/\\" or unicodedata.category(ch) == "Cc" for ch in filename):
            raise InvalidParam("Filename contains invalid characters")
        extension = filename.rsplit(".", 1)[1].lower() if "." in filename else ""
        if len(filename) > MAX_NAME:
            filename = filename[:MAX_NAME] + (f".{extension}" if extension else "")
        if extension and extension in self.limits.blacklist:
            raise InvalidParam(f"File extension '.{extension}' is not allowed for security reasons")
        category, limit = self.limits.category(extension)
        return UploadName(filename, extension[:32], category, limit)

    def spool(self, name: UploadName) -> UploadSpool:
        return UploadSpool(self.spool_dir, name)

    async def store(
        self, auth: AppAuth, user: str | None, name: UploadName, spool: UploadSpool, content_type: str | None
    ) -> UploadFile:
        digest = spool.finish()
        file_id = str(uuid.uuid4())
        tenant_id = auth.app.tenant_id
        key = f"upload_files/{tenant_id}/{file_id}" + (f".{name.extension}" if name.extension else "")
        try:
            await self.storage.put(key, spool.path)
        except Exception as exc:
            spool.discard()
            raise ServiceUnavailable("File storage is unavailable.", code="s3_connection_failed") from exc
        row = UploadFile(
            id=file_id,
            tenant_id=tenant_id,
            app_id=auth.app.id,
            storage_key=key,
            name=name.name,
            size=spool.size,
            extension=name.extension,
            mime_type=guess_mime(name.name, content_type),
            content_hash=digest,
            created_by_role="end_user",
            created_by="",
        )
        async with self._db() as session, session.begin():
            end_user = await repos.end_user(
                session, auth.app, "service_api", user or ANONYMOUS, anonymous=user is None
            )
            row.created_by = end_user.id
            session.add(row)
        return row

    # -- file inputs (§7) -----------------------------------------------------------------------------

    async def resolve(
        self,
        auth: AppAuth,
        user: str,
        variables: Sequence[Mapping[str, Any]],
        prepared: dict[str, Any],
        files: Sequence[Any] | None,
        features: Mapping[str, Any],
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """File objects of ``prepared`` inputs and of the request's ``files`` as engine file values."""
        resolved = dict(prepared)
        total = 0
        async with self._db() as session:
            owner = await self._end_user_id(session, auth, user)
            for declaration in variables:
                name = str(declaration.get("variable") or "")
                kind = declaration.get("type")
                value = resolved.get(name)
                if value is None or kind not in ("file", "file-list"):
                    continue
                items = [value] if kind == "file" else list(value)
                total += len(items)
                values = [await self._one(session, auth, owner, item, declaration, name) for item in items]
                resolved[name] = values[0] if kind == "file" else values
            sys_files: list[dict[str, Any]] = []
            upload = _file_upload_config(features)
            if files and upload.get("enabled"):
                limit = int(upload.get("number_limits") or 0)
                if limit and len(files) > limit:
                    raise InvalidParam("Number of files exceeds the limit")
                total += len(files)
                for item in files:
                    sys_files.append(await self._one(session, auth, owner, item, upload, "files"))
        if total > self.limits.per_run:
            raise InvalidParam("Number of files exceeds the limit")
        return resolved, sys_files

    async def _end_user_id(self, session: AsyncSession, auth: AppAuth, user: str) -> str | None:
        return await chat_repos.end_user_id(session, auth.app.id, "service_api", user)

    async def _one(
        self,
        session: AsyncSession,
        auth: AppAuth,
        owner: str | None,
        raw: Any,
        config: Mapping[str, Any],
        field: str,
    ) -> dict[str, Any]:
        if isinstance(raw, Mapping) and raw.get("dify_model_identity") == FILE_IDENTITY:
            raise InvalidParam("Invalid upload file")  # never trust a client-made file value
        try:
            ref = FileRef.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join([field, *(str(p) for p in first["loc"])])
            raise InvalidParam(f"{where}: {first['msg']}") from exc
        if ref.type not in FILE_TYPES:
            raise InvalidParam(f"{field}.type: Input should be {_choices(FILE_TYPES)}")
        if ref.transfer_method not in ("remote_url", "local_file"):
            raise InvalidParam(f"{field}.transfer_method: Input should be 'remote_url' or 'local_file'")
        if ref.transfer_method == "local_file":
            value = await self._local(session, auth, owner, ref)
        else:
            value = _remote(ref)
        if not file_allowed(config, ref.type, value["extension"], ref.transfer_method):
            raise InvalidParam(f"File validation failed for file: {value['filename']}")
        return value

    async def _local(
        self, session: AsyncSession, auth: AppAuth, owner: str | None, ref: FileRef
    ) -> dict[str, Any]:
        row = await chat_repos.get_upload(session, ref.upload_file_id or "") if ref.upload_file_id else None
        if row is None or row.tenant_id != auth.app.tenant_id:
            raise InvalidParam("Invalid upload file")
        if row.created_by_role == "end_user" and (owner is None or row.created_by != owner):
            raise InvalidParam("Invalid upload file")
        return {
            "dify_model_identity": FILE_IDENTITY,
            "id": row.id,
            "tenant_id": row.tenant_id,
            "type": ref.type,
            "transfer_method": "local_file",
            "remote_url": None,
            "reference": row.storage_key,
            "related_id": row.id,
            "filename": row.name,
            "extension": f".{row.extension}" if row.extension else "",
            "mime_type": row.mime_type,
            "size": row.size,
            "url": None,
        }

    async def mark_used(self, file_values: Sequence[Any], by: str) -> None:
        ids = [v["related_id"] for v in file_values if v.get("transfer_method") == "local_file"]
        if ids:
            async with self._db() as session, session.begin():
                await chat_repos.mark_used(session, ids, by, utcnow())


def collect_files(prepared: Mapping[str, Any], sys_files: Sequence[Any]) -> list[dict[str, Any]]:
    """Every file value among resolved inputs and ``sys.files``."""
    out: list[dict[str, Any]] = [f for f in sys_files if isinstance(f, dict)]
    for value in prepared.values():
        items = value if isinstance(value, list) else [value]
        out.extend(v for v in items if isinstance(v, dict) and v.get("dify_model_identity") == FILE_IDENTITY)
    return out


def _choices(values: Sequence[str]) -> str:
    quoted = [f"'{v}'" for v in values]
    return ", ".join(quoted[:-1]) + f" or {quoted[-1]}"


def _remote(ref: FileRef) -> dict[str, Any]:
    url = (ref.url or ref.remote_url or "").strip()
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise InvalidParam("Invalid file url")
    filename = unquote(parsed.path.rsplit("/", 1)[-1]) or parsed.netloc
    extension = "." + filename.rsplit(".", 1)[1].lower() if "." in filename else ""
    return {
        "dify_model_identity": FILE_IDENTITY,
        "id": None,
        "type": ref.type,
        "transfer_method": "remote_url",
        "remote_url": url,
        "reference": None,
        "related_id": None,
        "filename": filename,
        "extension": extension,
        "mime_type": mimetypes.guess_type(filename)[0] or "application/octet-stream",
        "size": -1,
        "url": url,
    }


def _file_upload_config(features: Mapping[str, Any]) -> dict[str, Any]:
    """The ``file_upload`` feature, with a legacy ``image`` block flattened (as /parameters does)."""
    block = dict(features.get("file_upload") or {})
    image = block.get("image")
    if isinstance(image, Mapping) and image.get("enabled"):
        block.update(
            enabled=True,
            number_limits=image.get("number_limits", 3),
            allowed_file_upload_methods=image.get("transfer_methods") or [],
            allowed_file_types=block.get("allowed_file_types") or ["image"],
        )
    return block

"""``POST /v1/files/upload`` (service-api §5.4): the form is parsed here, as a stream.

Checks run in the spec's order where a stream allows it: the declared ``Content-Length`` against
the largest limit before any byte is read; then the parts. The ``file`` part's name is checked when
its headers arrive and its bytes go to a capped temporary file, so an oversized upload is refused as
soon as it passes its category's limit; a name problem is reported once the whole form is read, so
that ``too_many_files`` (a later part) wins over it, as in Dify.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from sluice.api.deps import AppAuthDep, ContainerDep
from sluice.api.service.chat_schemas import FileResponse
from sluice.api.service.multipart import BodyCapExceeded, MultipartError, MultipartReader, boundary_of
from sluice.api.service.schemas import ServiceApiError
from sluice.runtime.dify_events import epoch
from sluice.services.errors import DomainError, InvalidParam, ServiceUnavailable
from sluice.services.files import (
    FileService,
    NoFileUploaded,
    TooManyFiles,
    UploadName,
    UploadSpool,
    too_large,
)

router = APIRouter(tags=["files"])
FIELD_MAX = 64 * 1024
UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "user": {"type": "string"},
                    },
                }
            }
        },
    }
}
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ServiceApiError} for status in (400, 401, 403, 413, 415, 500, 503)
}


def file_service(c: Any) -> FileService:
    files: FileService | None = getattr(c, "files", None)
    if files is None:
        raise ServiceUnavailable("File uploads are not available in this process.")
    return files


@router.post(
    "/files/upload",
    operation_id="upload_file",
    status_code=201,
    response_model=FileResponse,
    responses=ERRORS,
    openapi_extra=UPLOAD_BODY,
)
async def upload_file(request: Request, auth: AppAuthDep, c: ContainerDep) -> JSONResponse:
    files = file_service(c)
    boundary = boundary_of(request.headers.get("content-type", ""))
    if boundary is None:
        raise NoFileUploaded()
    cap = files.limits.largest_bytes + 1024 * 1024
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        category, limit = files.limits.largest()
        raise too_large(int(declared), limit, category)
    form = _Form(files)
    try:
        await form.read(MultipartReader(request.stream().__aiter__(), boundary, cap))
        row = await form.finish(auth)
    finally:
        form.cleanup()
    body = FileResponse(
        id=row.id,
        name=row.name,
        size=row.size,
        extension=row.extension,
        mime_type=row.mime_type,
        created_by=row.created_by,
        created_at=epoch(row.created_at) or 0,
        preview_url=None,
        source_url=None,
    )
    return JSONResponse(body.model_dump(), status_code=201)


class _Form:
    """What the parts of one upload form said."""

    def __init__(self, files: FileService) -> None:
        self.files = files
        self.file_names: set[str] = set()
        self.name: UploadName | None = None
        self.name_error: DomainError | None = None
        self.spool: UploadSpool | None = None
        self.content_type: str | None = None
        self.seen_file = False
        self.user: str | None = None
        self.user_bytes = bytearray()

    async def read(self, reader: MultipartReader) -> None:
        target = "skip"
        try:
            async for item in reader.parts():
                if not isinstance(item, bytes):
                    target = self._begin(item.name, item.filename, item.content_type)
                elif target == "file":
                    assert self.spool is not None
                    self.spool.write(item)
                elif target == "user":
                    self.user_bytes.extend(item)
                    if len(self.user_bytes) > FIELD_MAX:
                        raise InvalidParam("Arg user is too long (max 255 characters).")
        except BodyCapExceeded:
            limit = self.name.limit_mb if self.name else self.files.limits.file_mb
            category = self.name.category if self.name else "document"
            raise too_large(reader_size(self), limit, category) from None
        except MultipartError:
            if not self.seen_file:
                raise NoFileUploaded() from None
            raise InvalidParam("Invalid multipart body") from None

    def _begin(self, name: str, filename: str | None, content_type: str | None) -> str:
        if filename is None:
            if name == "user" and self.user is None and not self.user_bytes:
                return "user"
            return "skip"
        self.file_names.add(name)
        if name != "file" or self.seen_file:
            return "skip"
        self.seen_file = True
        self.content_type = content_type
        try:
            self.name = self.files.check_name(filename)
        except DomainError as exc:
            self.name_error = exc
            return "skip"
        self.spool = self.files.spool(self.name)
        return "file"

    async def finish(self, auth: Any) -> Any:
        if not self.seen_file:
            raise NoFileUploaded()
        if len(self.file_names) > 1:
            raise TooManyFiles()
        if self.name_error is not None:
            raise self.name_error
        user = self.user_bytes.decode("utf-8", "replace") or None
        if user is not None and len(user) > 255:
            raise InvalidParam("Arg user is too long (max 255 characters).")
        assert self.name is not None and self.spool is not None
        row = await self.files.store(auth, user, self.name, self.spool, self.content_type)
        self.spool = None
        return row

    def cleanup(self) -> None:
        if self.spool is not None:
            self.spool.discard()
            self.spool = None


def reader_size(form: _Form) -> int:
    return form.spool.size if form.spool is not None else 0

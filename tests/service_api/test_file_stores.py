"""One contract for the file stores: the local directory and an S3-compatible bucket (moto in
server mode, a real HTTP S3 endpoint). Both serve uploads by storage key, engine file values by
``reference`` and engine-made ``tool_file``s, and refuse keys outside their upload area."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from tests.service_api.conftest import MotoServer, create_bucket

from sluice.adapters.files import LocalFileStore
from sluice.adapters.files.s3 import S3FileStore
from sluice.engine.ports import FileStoreError
from sluice.engine.values import FILE_IDENTITY


@pytest.fixture(params=["local", "s3"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    if request.param == "local":
        yield LocalFileStore(tmp_path / "data")
        return
    moto: MotoServer = request.getfixturevalue("moto_server")
    bucket = f"contract-{uuid.uuid4().hex[:12]}"
    create_bucket(moto, bucket)
    s3 = S3FileStore(
        bucket, endpoint_url=moto.url, region="us-east-1", access_key="testing", secret_key="testing"
    )
    yield s3
    await s3.aclose()


def spooled(tmp_path: Path, content: bytes) -> Path:
    path = tmp_path / f"spool-{uuid.uuid4().hex}"
    path.write_bytes(content)
    return path


async def test_put_get_delete_by_key(store: Any, tmp_path: Path) -> None:
    key = f"upload_files/tenant-1/{uuid.uuid4()}.pdf"
    source = spooled(tmp_path, b"%PDF-1.4 contract")
    await store.put(key, source)
    assert not source.exists()  # the temporary file is consumed
    assert await store.get(key) == b"%PDF-1.4 contract"
    value = {"dify_model_identity": FILE_IDENTITY, "transfer_method": "local_file", "reference": key}
    assert await store.read(value) == b"%PDF-1.4 contract"
    await store.delete(key)
    with pytest.raises(FileStoreError):
        await store.get(key)


async def test_missing_and_foreign_keys_are_refused(store: Any, tmp_path: Path) -> None:
    with pytest.raises(FileStoreError):
        await store.get(f"upload_files/tenant-1/{uuid.uuid4()}.txt")
    for key in ("etc/passwd", "upload_files/../secret", "other/upload_files/x"):
        with pytest.raises(FileStoreError):
            await store.put(key, spooled(tmp_path, b"x"))
        with pytest.raises(FileStoreError):
            await store.get(key)


async def test_tool_files_round_trip(store: Any) -> None:
    saved = await store.save(b"a,b\n1,2\n", "table.csv", "text/csv")
    assert saved["dify_model_identity"] == FILE_IDENTITY and saved["transfer_method"] == "tool_file"
    assert (saved["extension"], saved["size"], saved["type"]) == (".csv", 8, "document")
    assert saved["reference"].startswith("upload_files/tool_files/")
    assert await store.read(saved) == b"a,b\n1,2\n"
    by_id = {"transfer_method": "tool_file", "related_id": saved["related_id"], "extension": ".csv"}
    assert await store.read(by_id) == b"a,b\n1,2\n"


async def test_remote_files_need_a_transport(store: Any) -> None:
    with pytest.raises(FileStoreError, match="not configured"):
        await store.read({"transfer_method": "remote_url", "remote_url": "http://127.0.0.1:9/x.txt"})
    with pytest.raises(FileStoreError, match="Missing URL"):
        await store.read({"transfer_method": "remote_url"})

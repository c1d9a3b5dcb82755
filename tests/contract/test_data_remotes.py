"""Data remotes, a folder and S3 (a moto server over real HTTP): push sends only what the
remote lacks, pull brings back the exact bytes into another store, damage is caught."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import pytest

from cairn.data.remotes import add_remote, read_remotes
from cairn.data.service import DataService
from cairn.errors import IntegrityError, NotFound
from cairn.stores.artifacts.fsspec import FsspecArtifactStore
from cairn.stores.metadata.data import SqlDataCatalog
from cairn.stores.metadata.sql import SqlMetadataStore
from s3_server import S3Endpoint, s3_endpoint

__all__ = ["s3_endpoint"]  # the session fixture, imported so that pytest finds it


@pytest.fixture(params=["folder", pytest.param("s3", marks=pytest.mark.s3)])
def remote(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FsspecArtifactStore]:
    if request.param == "folder":
        yield FsspecArtifactStore(str(tmp_path / "remote"))
        return
    s3: S3Endpoint = request.getfixturevalue("s3_endpoint")
    url = f"s3://{s3.bucket}/remote-{uuid.uuid4().hex}"
    yield FsspecArtifactStore(url, s3.storage_options)
    fs, root = fsspec.core.url_to_fs(url, **s3.storage_options)
    if fs.exists(root):
        fs.rm(root, recursive=True)


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[SqlDataCatalog]:
    store = SqlMetadataStore(f"sqlite:///{tmp_path / 'team.db'}")
    yield SqlDataCatalog(store.engine)
    store.close()


def _workspace(root: Path, catalog: SqlDataCatalog, name: str) -> DataService:
    folder = root / name
    folder.mkdir()
    artifacts = FsspecArtifactStore(str(root / f"{name}-objects"))
    return DataService(lambda: catalog, artifacts, folder, root / f"{name}-home")


def _files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def test_push_then_pull_into_another_store_gives_the_same_bytes(
    remote: FsspecArtifactStore, catalog: SqlDataCatalog, tmp_path: Path
) -> None:
    alice = _workspace(tmp_path, catalog, "alice")
    images = alice.workspace / "data" / "images"
    (images / "cats").mkdir(parents=True)
    for i in range(30):
        (images / "cats" / f"{i}.jpg").write_bytes(os.urandom(200 + i))
    (images / "big.bin").write_bytes(os.urandom((1 << 20) + 5))  # an object of its own
    alice.add(images, "images")
    first = alice.push([], remote)  # the versions cairn.lock names
    assert (first.objects, first.present) == (4, 0)  # 2 listings, 1 bundle, 1 large file
    again = alice.push(["images@1"], remote)
    assert (again.objects, again.present) == (0, 4)  # only what the remote lacks moves

    bob = _workspace(tmp_path, catalog, "bob")  # another machine: same catalog, empty store
    fetched = bob.fetch(["images@1"], remote)
    assert fetched.objects == 4
    bob.checkout("images@1")
    assert _files(bob.workspace / "data" / "images") == _files(images)
    assert bob.fetch(["images@1"], remote).objects == 0


def test_a_damaged_remote_object_is_refused_on_pull(
    remote: FsspecArtifactStore, catalog: SqlDataCatalog, tmp_path: Path
) -> None:
    alice = _workspace(tmp_path, catalog, "alice")
    data = alice.workspace / "data"
    data.mkdir()
    (data / "c.csv").write_bytes(b"id,age\n1,30\n")
    added = alice.add(data / "c.csv", "customers")
    alice.push([], remote)
    bundle = next(
        d for d in alice.files(added.version.digest) if d.bundle
    ).bundle  # the bundle holding the file
    store: Any = remote
    path = store._object_path(bundle)
    store._fs.pipe_file(path, b"id,age\n1,99\n")  # same size, other bytes
    bob = _workspace(tmp_path, catalog, "bob")
    with pytest.raises(IntegrityError):
        bob.fetch(["customers@1"], remote)
    assert bob.artifacts.missing([bundle]) == {bundle}  # nothing damaged was kept


def test_remotes_are_named_in_cairn_yaml(tmp_path: Path) -> None:
    (tmp_path / "cairn.yaml").write_text("experiment: churn\n")
    add_remote(tmp_path, "origin", "s3://ml-data/cairn", default=True)
    add_remote(tmp_path, "nas", "/mnt/nas/cairn")
    found = read_remotes(tmp_path)
    assert found.url(None) == ("origin", "s3://ml-data/cairn")
    assert found.url("nas") == ("nas", "/mnt/nas/cairn")
    assert "experiment: churn" in (tmp_path / "cairn.yaml").read_text()  # kept
    with pytest.raises(
        NotFound, match=r"remote 'nope' is not configured \(configured: nas, origin\)"
    ):
        found.url("nope")

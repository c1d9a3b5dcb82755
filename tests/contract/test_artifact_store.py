"""The ArtifactStore contract, run against every backend: local disk, memory://, S3 (moto).

Tests look at the store from outside, through the same fsspec filesystem: objects must
be at ``<root>/objects/<object_key(digest)>`` and nothing else may be left behind.
"""

from __future__ import annotations

import importlib
import io
import random
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import blake3
import fsspec
import pytest

from cairn.core.artifact import object_key
from cairn.core.ports import ArtifactStore
from cairn.errors import (
    DigestMismatch,
    IntegrityError,
    InvalidInput,
    MissingExtra,
    NotFound,
    ServerUnavailable,
)
from cairn.stores.artifacts.fsspec import FsspecArtifactStore
from s3_server import S3Endpoint, s3_endpoint

__all__ = ["s3_endpoint"]  # the session fixture, imported so that pytest finds it

MIB = 1 << 20
EMPTY_BLAKE3 = "blake3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
ABSENT = "blake3:" + "0" * 64


@dataclass
class Backend:
    """A store under test, and the filesystem to inspect it from outside."""

    store: FsspecArtifactStore
    fs: Any
    root: str

    def object_path(self, digest: str) -> str:
        return f"{self.root}/objects/{object_key(digest)}"

    def objects(self) -> list[str]:
        return self.files(f"{self.root}/objects")

    def files(self, under: str | None = None) -> list[str]:
        path = under or self.root
        return sorted(self.fs.find(path)) if self.fs.exists(path) else []


@pytest.fixture(params=["local", "memory", pytest.param("s3", marks=pytest.mark.s3)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """A fresh, empty store of each kind."""
    url, options = _location(request, tmp_path)
    fs, root = fsspec.core.url_to_fs(url, **options)
    yield Backend(FsspecArtifactStore(url, options), fs, root.rstrip("/"))
    if request.param != "local" and fs.exists(root):  # memory:// is one global dict
        fs.rm(root, recursive=True)


def _location(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, dict[str, Any]]:
    unique = uuid.uuid4().hex
    if request.param == "local":
        return str(tmp_path / "store"), {}
    if request.param == "memory":
        return f"memory://cairn-{unique}", {}
    s3: S3Endpoint = request.getfixturevalue("s3_endpoint")
    return f"s3://{s3.bucket}/{unique}", s3.storage_options


@pytest.fixture
def spool_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The local temporary folder, made private so leftovers in it can be seen."""
    path = tmp_path / "spool"
    path.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(path))
    return path


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _read(store: FsspecArtifactStore, digest: str) -> list[bytes]:
    with store.open(digest) as chunks:
        return list(chunks)


def _random_bytes(size: int, seed: int = 7) -> bytes:
    return random.Random(seed).randbytes(size)


def test_the_store_satisfies_the_port(backend: Backend) -> None:
    """FsspecArtifactStore can stand wherever an ArtifactStore is expected."""
    store: ArtifactStore = backend.store
    assert store.missing([]) == set()


def test_small_file_round_trips(backend: Backend, tmp_path: Path) -> None:
    source = _write(tmp_path / "small.txt", b"hello, cairn\n")

    info = backend.store.put_file(source)
    backend.store.get_file(info.digest, tmp_path / "out.txt")

    assert info.size == 13
    assert (tmp_path / "out.txt").read_bytes() == b"hello, cairn\n"


def test_multi_chunk_file_round_trips_as_a_stream_of_chunks(
    backend: Backend, tmp_path: Path
) -> None:
    data = _random_bytes(3 * MIB + 5)
    info = backend.store.put_file(_write(tmp_path / "big.bin", data))

    chunks = _read(backend.store, info.digest)
    backend.store.get_file(info.digest, tmp_path / "out.bin")

    assert len(chunks) > 1, "open() should stream, not return the object in one piece"
    assert b"".join(chunks) == data
    assert (tmp_path / "out.bin").read_bytes() == data
    assert info.size == len(data)


def test_empty_object_round_trips(backend: Backend) -> None:
    info = backend.store.put_stream(io.BytesIO(b""))

    assert info.digest == EMPTY_BLAKE3
    assert b"".join(_read(backend.store, info.digest)) == b""


def test_digest_is_blake3_of_the_bytes_whichever_way_they_come_in(
    backend: Backend, tmp_path: Path
) -> None:
    data = _random_bytes(MIB + 1, seed=11)
    expected = "blake3:" + blake3.blake3(data).hexdigest()

    from_file = backend.store.put_file(_write(tmp_path / "a.bin", data))
    from_stream = backend.store.put_stream(io.BytesIO(data))

    assert from_file.digest == from_stream.digest == expected
    assert backend.objects() == [backend.object_path(expected)]


def test_identical_content_is_stored_once(backend: Backend, tmp_path: Path) -> None:
    data = _random_bytes(2 * MIB, seed=3)
    first = backend.store.put_file(_write(tmp_path / "one.bin", data))
    again = backend.store.put_file(_write(tmp_path / "two.bin", data))
    streamed = backend.store.put_stream(io.BytesIO(data), expected_digest=first.digest)
    other = backend.store.put_stream(io.BytesIO(b"something else"))

    assert first == again == streamed
    assert backend.objects() == sorted(
        [backend.object_path(first.digest), backend.object_path(other.digest)]
    )
    assert backend.files(f"{backend.root}/tmp") == []


def test_put_stream_with_the_expected_digest_stores_the_bytes(backend: Backend) -> None:
    data = b"checked on the way in"
    digest = "blake3:" + blake3.blake3(data).hexdigest()

    info = backend.store.put_stream(io.BytesIO(data), expected_digest=digest)

    assert info.digest == digest
    assert b"".join(_read(backend.store, digest)) == data


def test_put_stream_with_a_wrong_digest_raises_and_leaves_nothing_behind(
    backend: Backend, spool_dir: Path
) -> None:
    data = _random_bytes(MIB + 3, seed=5)
    actual = "blake3:" + blake3.blake3(data).hexdigest()
    wrong = "blake3:" + blake3.blake3(b"other bytes").hexdigest()

    with pytest.raises(DigestMismatch, match=wrong):
        backend.store.put_stream(io.BytesIO(data), expected_digest=wrong)

    assert backend.store.missing([actual, wrong]) == {actual, wrong}
    assert backend.files() == []  # no object, no temporary object
    assert list(spool_dir.iterdir()) == []  # no local spool file


def test_an_error_from_the_callers_stream_reaches_the_caller_and_leaves_nothing(
    backend: Backend, spool_dir: Path
) -> None:
    class DroppedConnection(io.RawIOBase):
        def __init__(self) -> None:
            self.sent = False

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            if self.sent:
                raise OSError("connection reset by peer")
            self.sent = True
            buffer[:4] = b"half"
            return 4

    with pytest.raises(OSError, match="connection reset by peer") as raised:
        backend.store.put_stream(io.BufferedReader(DroppedConnection()))

    assert raised.type is OSError  # not re-labelled as a store failure
    assert backend.files() == []
    assert list(spool_dir.iterdir()) == []


def test_put_stream_refuses_an_expected_digest_of_another_algorithm(backend: Backend) -> None:
    with pytest.raises(InvalidInput, match="blake3"):
        backend.store.put_stream(io.BytesIO(b"x"), expected_digest="sha256:" + "a" * 64)


def test_missing_reports_exactly_the_absent_digests(backend: Backend) -> None:
    present = {backend.store.put_stream(io.BytesIO(b"%d" % i)).digest for i in range(5)}
    absent = {"blake3:" + blake3.blake3(b"absent %d" % i).hexdigest() for i in range(40)}

    assert backend.store.missing(sorted(present | absent)) == absent
    assert backend.store.missing(iter(present)) == set()
    assert backend.store.missing([]) == set()


def test_sizes_are_those_of_the_stored_objects_and_only_those(backend: Backend) -> None:
    stored = {backend.store.put_stream(io.BytesIO(b"x" * i)) for i in (0, 1, 70)}
    absent = {"blake3:" + blake3.blake3(b"absent %d" % i).hexdigest() for i in range(40)}

    found = backend.store.sizes(sorted({info.digest for info in stored} | absent))
    assert found == {info.digest: info.size for info in stored}
    assert backend.store.sizes([]) == {}
    with pytest.raises(InvalidInput, match="not-a-digest"):
        backend.store.sizes([ABSENT, "not-a-digest"])


def test_missing_rejects_a_malformed_digest(backend: Backend) -> None:
    with pytest.raises(InvalidInput, match="not-a-digest"):
        backend.store.missing([ABSENT, "not-a-digest"])


def test_open_of_a_corrupted_object_raises_integrity_error_naming_it(
    backend: Backend,
) -> None:
    digest = backend.store.put_stream(io.BytesIO(_random_bytes(MIB + 9))).digest
    backend.fs.pipe_file(backend.object_path(digest), b"bit rot")

    with pytest.raises(IntegrityError, match=digest):
        _read(backend.store, digest)


def test_get_file_of_a_corrupted_object_leaves_no_dest_file(
    backend: Backend, tmp_path: Path
) -> None:
    digest = backend.store.put_stream(io.BytesIO(b"original")).digest
    backend.fs.pipe_file(backend.object_path(digest), b"tampered")
    dest = tmp_path / "out" / "file.txt"

    with pytest.raises(IntegrityError, match=digest):
        backend.store.get_file(digest, dest)

    assert list(dest.parent.iterdir()) == []


def test_open_of_a_missing_digest_raises_not_found(backend: Backend) -> None:
    with pytest.raises(NotFound, match=ABSENT):
        _read(backend.store, ABSENT)


def test_get_file_of_a_missing_digest_raises_not_found_and_writes_nothing(
    backend: Backend, tmp_path: Path
) -> None:
    dest = tmp_path / "out" / "file.txt"

    with pytest.raises(NotFound, match=ABSENT):
        backend.store.get_file(ABSENT, dest)

    assert not dest.exists()
    assert not dest.parent.exists() or list(dest.parent.iterdir()) == []


def test_get_file_creates_parent_folders_and_replaces_the_dest(
    backend: Backend, tmp_path: Path
) -> None:
    digest = backend.store.put_stream(io.BytesIO(b"new content")).digest
    dest = tmp_path / "a" / "b" / "c.txt"
    dest.parent.mkdir(parents=True)
    dest.write_bytes(b"old content that is longer")

    backend.store.get_file(digest, dest)

    assert dest.read_bytes() == b"new content"
    assert [p.name for p in dest.parent.iterdir()] == ["c.txt"]


def test_get_file_creates_missing_parent_folders(backend: Backend, tmp_path: Path) -> None:
    digest = backend.store.put_stream(io.BytesIO(b"deep")).digest
    dest = tmp_path / "x" / "y" / "z" / "deep.txt"

    backend.store.get_file(digest, dest)

    assert dest.read_bytes() == b"deep"


# -- backend-specific behaviour: opening a store ------------------------------------------


def test_s3_without_s3fs_names_the_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "s3fs", None)  # makes `import s3fs` fail
    # fsspec remembers backends it already imported; forget s3fs for this test.
    imported = importlib.import_module("fsspec.registry")._registry
    monkeypatch.delitem(imported, "s3", raising=False)

    with pytest.raises(MissingExtra, match=r"pip install 'cairn-mlops\[s3\]'"):
        FsspecArtifactStore("s3://bucket/prefix")


def test_an_unknown_protocol_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="nosuchfs://"):
        FsspecArtifactStore("nosuchfs://somewhere")


@pytest.mark.s3
def test_an_unreachable_s3_endpoint_says_to_check_the_endpoint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("s3fs")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    options = {
        "client_kwargs": {"endpoint_url": f"http://127.0.0.1:{_closed_port()}"},
        "config_kwargs": {"retries": {"max_attempts": 1}, "connect_timeout": 2},
    }
    store = FsspecArtifactStore(f"s3://bucket/{uuid.uuid4().hex}", options)

    with pytest.raises(ServerUnavailable, match="endpoint URL"):
        store.missing([ABSENT])


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_stored_objects_are_listed_and_removed(backend: Backend, tmp_path: Path) -> None:
    kept = backend.store.put_stream(io.BytesIO(b"kept"))
    gone = backend.store.put_stream(io.BytesIO(b"gone"))
    listed = {o.digest: o for o in backend.store.stored()}
    assert set(listed) == {kept.digest, gone.digest}
    assert listed[kept.digest].size == 4
    assert listed[kept.digest].modified_at > time.time() - 600
    backend.store.remove([gone.digest, gone.digest])  # removing twice is no error
    assert backend.store.missing([kept.digest, gone.digest]) == {gone.digest}

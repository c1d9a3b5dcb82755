"""A small data version cannot make anyone walk a billion entries.

A listing names each of its folders' listings by digest, and may name one many times:
identical folders share a listing. So may a contributor's three small listings that each
name the one below a thousand times: they stand for 10**9 files. Each reader is tried
against such manifests here:

- a server recording a version reads each of its listings once, whatever they add up to,
  and refuses (a 400 naming the field) what holds more than the version claims, more than
  ``MAX_ENTRIES`` files and folders, or folders nested past a path's length;
- a client's walk (checkout, ``get``, ``ls``, ``diff``, ``status``) stops at the first file
  past what the version claims, and at ``MAX_ENTRIES`` whatever it claims (a tampered store
  or server may claim 10**18 files); ``pull`` reads each listing once;
- no object is read whole past what a listing, a bundle or a profile may be, and ``add``
  makes no listing a checkout would refuse.

Work is measured in objects read, not in time: each walk below reads through a store that
fails the test past a small budget of reads.
"""

from __future__ import annotations

import io
import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import orjson
import pytest

from cairn.core.data import DataKind, NewDataVersion
from cairn.core.ports import ArtifactStore
from cairn.data import manifest, materialize, service
from cairn.data.manifest import check_new_version, measure
from cairn.data.service import DataService
from cairn.errors import IntegrityError, InvalidInput
from cairn.stores.artifacts.fsspec import FsspecArtifactStore
from cairn.stores.metadata.data import SqlDataCatalog
from cairn.stores.metadata.sql import SqlMetadataStore
from security import test_path_escape as escape
from security.test_path_escape import Server, _digest, _post, _tree

# A server with a contributor's token, and a working copy of it, as there.
server = escape.server
client = escape.client
CONTENT = b"one small file, named many times\n"
READS = 50  # objects a walk below may read before the test calls it unbounded
LOW_CAP = 1_000  # MAX_ENTRIES for the tests that reach it


@dataclass
class Made:
    """A manifest's root and every object it is made of (listings and file content)."""

    root: str
    objects: dict[str, bytes]
    files: int
    bytes: int


def bomb(k: int, depth: int) -> Made:
    """``depth`` listings, each naming the one below ``k`` times: k**depth files of
    ``CONTENT``, from depth + 1 objects. Each folder's entry says what it holds."""
    objects = {_digest(CONTENT): CONTENT}
    entries = [[f"f{i:04d}", "f", _digest(CONTENT), len(CONTENT), "", 0] for i in range(k)]
    listing, files = _tree(entries), k
    for _ in range(depth - 1):
        objects[_digest(listing)] = listing
        size = files * len(CONTENT)
        listing = _tree([[f"d{i:04d}", "d", _digest(listing), size, files] for i in range(k)])
        files *= k
    objects[_digest(listing)] = listing
    return Made(_digest(listing), objects, files, files * len(CONTENT))


def nested(depth: int, name: str = "a") -> Made:
    """One file at the bottom of ``depth`` folders, each a listing of its own."""
    objects = {_digest(CONTENT): CONTENT}
    listing = _tree([["file", "f", _digest(CONTENT), len(CONTENT), "", 0]])
    for _ in range(depth):
        objects[_digest(listing)] = listing
        listing = _tree([[name, "d", _digest(listing), len(CONTENT), 1]])
    objects[_digest(listing)] = listing
    return Made(_digest(listing), objects, 1, len(CONTENT))


def _store(made: Made, store: ArtifactStore) -> None:
    for digest, content in made.objects.items():
        store.put_stream(io.BytesIO(content), digest)


class Counted:
    """An artifact store that counts the objects read from it and the bytes handed out,
    and fails the test past ``READS`` reads: an unbounded walk stops here, not in hours."""

    def __init__(self, store: ArtifactStore) -> None:
        self.store = store
        self.reads: Counter[str] = Counter()
        self.bytes_read = 0

    @contextmanager
    def open(self, digest: str) -> Iterator[Iterator[bytes]]:
        self.reads[digest] += 1
        total = sum(self.reads.values())
        assert total <= READS, f"{total} objects read: the walk is not bounded"
        with self.store.open(digest) as chunks:
            yield self._counted(chunks)

    def _counted(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            self.bytes_read += len(chunk)
            yield chunk

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


# a server reads each listing once


def _reader(objects: dict[str, bytes]) -> tuple[Counter[str], Any]:
    reads: Counter[str] = Counter()

    def read(digest: str) -> bytes:
        reads[digest] += 1
        assert sum(reads.values()) <= READS, "the listings are walked, not read once each"
        return objects[digest]

    return reads, read


def _claiming(made: Made, **claims: Any) -> NewDataVersion:
    return NewDataVersion(
        "bomb", made.root, claims.get("kind", DataKind.DIRECTORY), "data/bomb",
        claims.get("files", made.files), claims.get("bytes", made.bytes),
        objects=tuple(made.objects),
    )  # fmt: skip


def test_a_version_is_measured_reading_each_listing_once() -> None:
    made = bomb(100, 3)  # a million files from three listings
    reads, read = _reader(made.objects)
    assert measure(made.root, read) == manifest.Totals(10**6, 10**6 * len(CONTENT), 1010100, 11)
    assert set(reads.values()) == {1}
    with pytest.raises(InvalidInput, match="files, bytes: the manifest holds 1000000 files"):
        check_new_version(_claiming(made, files=1, bytes=1), _reader(made.objects)[1])
    check_new_version(_claiming(made), _reader(made.objects)[1])  # what it holds, it may claim


def test_a_folder_entry_must_say_what_its_listing_holds() -> None:
    made = bomb(3, 2)
    root = orjson.loads(made.objects[made.root])
    root["entries"][0][4] = 1  # "d0000 holds 1 file", its listing holds 3
    lying = orjson.dumps(root)
    made.objects[_digest(lying)] = lying
    made.root = _digest(lying)
    with pytest.raises(InvalidInput, match="folder 'd0000' says it holds 1 files of 99 bytes"):
        check_new_version(_claiming(made), _reader(made.objects)[1])  # 9 files: it does


def test_folders_may_nest_as_deep_as_a_path_but_no_deeper() -> None:
    deep = nested(1500)  # 'a/a/…/file', 3004 characters: past Python's recursion limit
    check_new_version(_claiming(deep), deep.objects.__getitem__)
    claims = manifest.Bound(1, len(CONTENT))
    walked = list(manifest.walk(deep.root, deep.objects.__getitem__, claims))
    assert [len(entry.path) for entry in walked] == [3004]
    deeper = nested(2100, "ab")  # a folder's path of 6299 characters
    with pytest.raises(InvalidInput, match="folders nest past a path of 4096 characters"):
        check_new_version(_claiming(deeper), deeper.objects.__getitem__)
    with pytest.raises(IntegrityError, match="folders nest past a path of 4096 characters"):
        list(manifest.walk(deeper.root, deeper.objects.__getitem__))


def test_a_listing_that_names_one_above_it_is_refused_not_followed() -> None:
    """A store verifies digests, so a loop needs a forged one; ``read`` may be any store."""
    loop = {"x": _tree([["again", "d", "x", 0, 0]])}
    with pytest.raises(IntegrityError, match="names x, a listing above it"):
        measure("x", loop.__getitem__)


# through a server


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        ({"files": 1, "bytes": 1}, "digest .*: .*it holds more than 50,000,000 files and folders"),
        ({"files": 10**9}, "files: 1000000000 is more than a version may hold"),
        ({"files": 10**18, "bytes": 2**63 - 1}, "files: 1000000000000000000 is more than"),
    ],
)
def test_a_server_refuses_a_billion_files_from_three_small_listings(
    server: Server, client: DataService, claims: dict[str, int], expected: str
) -> None:
    made = bomb(1000, 3)
    _store(made, client.artifacts)
    answer = _post(server, "bomb", _claiming(made, **claims))
    assert answer.status_code == 400, answer.text
    assert re.match(expected, answer.json()["error"]["message"])


def test_a_server_refuses_a_million_files_claimed_as_one(
    server: Server, client: DataService
) -> None:
    made = bomb(100, 3)
    _store(made, client.artifacts)
    answer = _post(server, "bomb", _claiming(made, files=1, bytes=len(CONTENT)))
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["message"].startswith(
        "files, bytes: the manifest holds 1000000 files"
    )


def test_identical_folders_share_a_listing_and_are_recorded_and_checked_out(
    client: DataService, tmp_path: Path
) -> None:
    folder = client.workspace / "data" / "twins"
    for twin in ("left", "right"):
        (folder / twin).mkdir(parents=True)
        (folder / twin / "a.csv").write_text("id\n1\n")
    added = client.add(folder, "twins", profile=False)
    root = orjson.loads(materialize.read_listing(client.artifacts, added.version.digest))
    assert root["entries"][0][2] == root["entries"][1][2]  # one listing, named twice
    done = client.checkout("twins", to=tmp_path / "copy")
    assert done.written == 2
    assert (tmp_path / "copy" / "right" / "a.csv").read_text() == "id\n1\n"


# a client walks no further than the version claims


@pytest.fixture
def local(tmp_path: Path) -> Iterator[tuple[DataService, SqlDataCatalog, Counted]]:
    """A working copy, its store (counted) and a catalog as a tampered database has it."""
    workspace = tmp_path / "project"
    workspace.mkdir()
    metadata = SqlMetadataStore(f"sqlite:///{tmp_path / 'cairn.db'}")
    catalog = SqlDataCatalog(metadata.engine)
    counted = Counted(FsspecArtifactStore(str(tmp_path / "objects")))
    data = DataService(lambda: catalog, counted, workspace, tmp_path / "home")  # type: ignore[arg-type]
    yield data, catalog, counted
    metadata.close()


def _recorded(catalog: SqlDataCatalog, name: str, made: Made, files: int, size: int) -> None:
    """What a tampered catalog (or server) says a version holds: no one measured it."""
    new = NewDataVersion(
        name, made.root, DataKind.DIRECTORY, f"data/{name}", files, size,
        objects=tuple(made.objects),
    )  # fmt: skip
    catalog.add_version(new)


def _written(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def test_a_checkout_stops_at_the_first_file_past_what_the_version_claims(
    local: tuple[DataService, SqlDataCatalog, Counted], tmp_path: Path
) -> None:
    data, catalog, counted = local
    made = bomb(50, 3)  # 125,000 files; the version claims 10
    _store(made, counted.store)
    _recorded(catalog, "bomb", made, 10, 10 * len(CONTENT))
    fine = nested(1)
    _store(fine, counted.store)
    _recorded(catalog, "fine", fine, 1, len(CONTENT))
    claimed = r"bomb@1: its manifest is damaged \(it holds more than the 10 files of 330 bytes"
    listings = [d for d in made.objects if made.objects[d] != CONTENT]
    for attempt in (
        lambda: data.checkout("bomb@1"),
        lambda: data.checkout("bomb@1", to=tmp_path / "copy", force=True),
        lambda: data.get("bomb@1"),
        lambda: data.ls("bomb@1"),
        lambda: data.diff("fine@1", "bomb@1"),
    ):
        counted.reads.clear()
        with pytest.raises(IntegrityError, match=claimed):
            attempt()
        assert [counted.reads[d] for d in listings] == [1, 1, 1]  # on the way to file 11
    for folder in (data.workspace / "data", tmp_path / "copy", tmp_path / "home" / "data"):
        assert _written(folder) == []


def test_a_claim_of_a_quintillion_files_or_none_is_walked_no_further_than_the_cap(
    local: tuple[DataService, SqlDataCatalog, Counted], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tampered catalog may claim what a 64-bit field holds; ``cairn.lock`` names a
    digest and claims nothing: the cap is then the only bound."""
    data, catalog, counted = local
    monkeypatch.setattr(manifest, "MAX_ENTRIES", LOW_CAP)
    made = bomb(50, 3)
    _store(made, counted.store)
    _recorded(catalog, "bomb", made, 10**18, 2**63 - 1)
    capped = r"bomb@1: .*it holds more than 1,000 files and folders"
    with pytest.raises(IntegrityError, match=capped):
        data.ls("bomb@1")
    assert sum(counted.reads.values()) <= 3 + LOW_CAP // 50  # two above, 50 files a leaf
    (data.workspace / "data" / "bomb").mkdir(parents=True)
    (data.workspace / "cairn.lock").write_text(
        f"datasets:\n  bomb:\n    path: data/bomb\n    version: 1\n    digest: {made.root}\n"
    )
    counted.reads.clear()
    with pytest.raises(IntegrityError, match=capped):
        data.status()
    assert sum(counted.reads.values()) <= 3 + LOW_CAP // 50


def test_a_pull_reads_each_listing_once(
    local: tuple[DataService, SqlDataCatalog, Counted], tmp_path: Path
) -> None:
    data, catalog, _ = local
    remote = Counted(FsspecArtifactStore(str(tmp_path / "remote")))
    made = bomb(50, 3)
    _store(made, remote.store)
    _recorded(catalog, "bomb", made, made.files, made.bytes)
    moved = data.fetch(["bomb@1"], remote)  # type: ignore[arg-type]
    assert moved.objects == len(made.objects) == 4
    listings = [d for d in made.objects if made.objects[d] != CONTENT]
    assert [remote.reads[d] for d in listings] == [2, 2, 2]  # looked at once, copied once


# no object is read whole past what it may be


def test_a_listing_past_its_size_is_refused_having_read_no_more_of_it(
    local: tuple[DataService, SqlDataCatalog, Counted], monkeypatch: pytest.MonkeyPatch
) -> None:
    data, catalog, counted = local
    monkeypatch.setattr(materialize, "MAX_LISTING_BYTES", 4096)
    entries = [[f"f{i:06d}", "f", _digest(CONTENT), len(CONTENT), "", 0] for i in range(30_000)]
    huge = _tree(entries)  # some 3 MiB: read in 1 MiB chunks
    objects = {_digest(huge): huge, _digest(CONTENT): CONTENT}
    made = Made(_digest(huge), objects, 30_000, 30_000 * len(CONTENT))
    _store(made, counted.store)
    _recorded(catalog, "huge", made, made.files, made.bytes)
    with pytest.raises(IntegrityError, match=r"is over 4096 bytes, more than a listing may be"):
        data.ls("huge@1")
    assert counted.bytes_read <= 1 << 20 < len(huge)  # one chunk, not the whole object
    with pytest.raises(InvalidInput, match=r"digest .*more than a listing may be"):
        check_new_version(_claiming(made), partial(materialize.read_listing, counted))


def test_a_bundle_past_its_size_is_refused(
    local: tuple[DataService, SqlDataCatalog, Counted],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    data, _, _ = local
    folder = data.workspace / "data" / "small"
    folder.mkdir(parents=True)
    (folder / "a.txt").write_bytes(b"x" * 5000)  # small: stored in a bundle
    data.add(folder, "small", profile=False)
    monkeypatch.setattr(materialize, "MAX_BUNDLE_BYTES", 4096)
    with pytest.raises(IntegrityError, match="over 4096 bytes, more than a bundle may be"):
        data.checkout("small@1", to=tmp_path / "copy")


def test_a_profile_past_its_size_is_refused(
    local: tuple[DataService, SqlDataCatalog, Counted], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("pyarrow")
    data, _, _ = local
    folder = data.workspace / "data" / "table"
    folder.mkdir(parents=True)
    (folder / "t.csv").write_text("id,name\n" + "".join(f"{i},n{i}\n" for i in range(100)))
    added = data.add(folder, "table").version
    assert data.profile(added)["tables"]["t.csv"]["rows"] == 100
    monkeypatch.setattr(service, "MAX_PROFILE_BYTES", 64)
    with pytest.raises(IntegrityError, match="over 64 bytes, more than a profile may be"):
        data.profile(added)


def test_add_makes_no_listing_a_checkout_would_refuse(
    local: tuple[DataService, SqlDataCatalog, Counted], monkeypatch: pytest.MonkeyPatch
) -> None:
    data, _, _ = local
    folder = data.workspace / "data" / "flat"
    folder.mkdir(parents=True)
    for i in range(40):
        (folder / f"file{i:03d}.txt").write_text(str(i))
    monkeypatch.setattr(manifest, "MAX_LISTING_BYTES", 4096)
    with pytest.raises(InvalidInput, match=r"^40 files and folders directly in one folder"):
        data.add(folder, "flat", profile=False)
    monkeypatch.setattr(manifest, "MAX_LISTING_BYTES", 1 << 20)
    monkeypatch.setattr(manifest, "MAX_ENTRIES", 39)
    with pytest.raises(InvalidInput, match="40 files in 0 folders: more than a version may"):
        data.add(folder, "flat", profile=False)

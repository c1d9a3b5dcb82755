"""Data versioning end to end over real stores (SQLite and PostgreSQL, a local object
store): versions, the stat cache, bundles, checkout, damage, interruption, audit."""

from __future__ import annotations

import contextlib
import errno
import io
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import cairn.data.profile as profile_module
import cairn.data.snapshot as snapshot_module
import cairn.data.stat_cache as stat_cache_module
import cairn.localfs.links as links_module
from cairn.config import load_settings
from cairn.core.access import Role
from cairn.core.actor import acting_as
from cairn.core.data import LinkMode
from cairn.data.diff import TableShape
from cairn.data.gc import collect
from cairn.data.service import DataService
from cairn.errors import IntegrityError, InvalidInput, InvalidState, NotFound, PermissionDenied
from cairn.session import Session
from cairn.stores.artifacts.fsspec import FsspecArtifactStore
from cairn.stores.metadata.audit import AuditLog, EventQuery
from cairn.stores.metadata.data import SqlDataCatalog
from cairn.stores.metadata.identity import IdentityStore
from cairn.stores.metadata.sql import SqlMetadataStore


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    (folder / "data" / "images" / "cats").mkdir(parents=True)
    for i in range(50):
        (folder / "data" / "images" / "cats" / f"{i:03d}.jpg").write_bytes(os.urandom(100 + i))
    (folder / "data" / "images" / "labels.csv").write_text("id,label\n1,cat\n")
    (folder / "data" / "customers.csv").write_text("id,age\n1,30\n2,40\n")
    _age(folder)
    return folder


@pytest.fixture
def stores(database_url: str, tmp_path: Path) -> Iterator[tuple[SqlMetadataStore, Path]]:
    store = SqlMetadataStore(database_url)
    yield store, tmp_path / "objects"
    store.close()


@pytest.fixture
def data(stores: tuple[SqlMetadataStore, Path], workspace: Path, tmp_path: Path) -> DataService:
    store, objects = stores
    artifacts = FsspecArtifactStore(str(objects))
    catalog = SqlDataCatalog(store.engine)
    return DataService(lambda: catalog, artifacts, workspace, tmp_path / "home")


def _objects(folder: Path) -> list[Path]:
    return [p for p in (folder / "objects").rglob("*") if p.is_file()]


def test_versions_are_numbered_and_unchanged_data_makes_none(
    data: DataService, workspace: Path
) -> None:
    images = workspace / "data" / "images"
    first = data.add(images, "images", "first")
    assert (first.version.ref, first.created, first.read) == ("images@1", True, 51)
    assert (first.version.files, first.version.path) == (51, "data/images")
    again = data.add(images, "images")
    assert (again.version.ref, again.created, again.read) == ("images@1", False, 0)
    (images / "cats" / "007.jpg").write_bytes(b"changed")
    second = data.add(images, "images", "second")
    assert (second.version.ref, second.created, second.read) == ("images@2", True, 1)
    assert [v.version for v in data.log("images")] == [2, 1]
    assert data.version("images").version == 2
    assert data.version(f"images@{first.version.digest[7:19]}").version == 1
    lock = (workspace / "cairn.lock").read_text()
    assert "images:" in lock
    assert "version: 2" in lock


def test_small_files_are_stored_in_bundles_not_one_object_each(
    data: DataService, stores: tuple[SqlMetadataStore, Path], workspace: Path
) -> None:
    data.add(workspace / "data" / "images", "images")
    stored = _objects(stores[1])
    assert len(stored) == 4  # one bundle, two listings (images/, images/cats/), a profile


def test_status_of_a_clean_copy_is_one_scan_and_still_sees_any_change(
    data: DataService, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    images = workspace / "data" / "images"
    data.add(images, "images")  # its files are old (not racy): the add marks them clean
    listed: list[str] = []
    real_files = DataService.files
    monkeypatch.setattr(
        DataService, "files", lambda self, *a: listed.append(a[0]) or real_files(self, *a)
    )
    assert data.status()[0].clean
    assert listed == []  # neither the manifest nor the stat cache was read
    label = images / "labels.csv"
    os.utime(label, ns=(label.stat().st_atime_ns, label.stat().st_mtime_ns + 1))
    assert data.status()[0].clean  # a touched file: looked at again, its bytes unchanged
    assert len(listed) == 1
    label.write_text("id,label\n1,dog\n")  # same size, new bytes
    assert data.status()[0].modified == ["labels.csv"]


def test_status_reads_only_what_changed(
    data: DataService, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    images = workspace / "data" / "images"
    data.add(images, "images")
    data.add(workspace / "data" / "customers.csv", "customers")
    reads: list[Path] = []
    real = stat_cache_module.hash_file
    monkeypatch.setattr(stat_cache_module, "hash_file", lambda p: reads.append(p) or real(p))
    clean = data.status()
    assert [(s.name, s.clean) for s in clean] == [("customers", True), ("images", True)]
    assert reads == []  # nothing was read
    (images / "cats" / "001.jpg").write_bytes(b"new bytes")
    (images / "cats" / "002.jpg").unlink()
    (images / "extra.txt").write_text("x")
    found = data.status("images")[0]
    assert (found.added, found.modified, found.deleted) == (
        ["extra.txt"],
        ["cats/001.jpg"],
        ["cats/002.jpg"],
    )
    assert reads == [images / "cats" / "001.jpg"]  # only the file whose stat changed


def test_checkout_brings_back_the_exact_bytes(
    data: DataService, workspace: Path, tmp_path: Path
) -> None:
    images = workspace / "data" / "images"
    before = {p.relative_to(images): p.read_bytes() for p in images.rglob("*") if p.is_file()}
    data.add(images, "images")
    done = data.checkout("images@1", to=tmp_path / "copy")
    copy = tmp_path / "copy"
    after = {p.relative_to(copy): p.read_bytes() for p in copy.rglob("*") if p.is_file()}
    assert after == before
    assert (done.written, done.unchanged) == (51, 0)
    single = data.add(workspace / "data" / "customers.csv", "customers")
    data.checkout(single.version.ref, to=tmp_path / "one")
    assert (tmp_path / "one" / "customers.csv").read_text() == "id,age\n1,30\n2,40\n"
    got = data.get("customers@1")
    assert got.read_text() == "id,age\n1,30\n2,40\n"


def _read_only_stops_this_account(folder: Path) -> bool:
    """Whether a read-only file here refuses this process's writes (root writes anyway)."""
    probe = folder / "probe"
    probe.write_bytes(b"")
    probe.chmod(0o444)
    try:
        probe.open("r+b").close()
    except PermissionError:
        return True
    finally:
        probe.unlink()
    return False


def _edit_in_place(path: Path) -> None:
    """What an editor or ``>>`` does: write into the file, not replace it."""
    with contextlib.suppress(PermissionError), path.open("r+b") as handle:
        handle.write(b"edited in place")


def test_a_hardlink_checkout_shares_the_stores_object_only_where_it_stays_read_only(
    data: DataService, workspace: Path, tmp_path: Path
) -> None:
    images = workspace / "data" / "images"
    big = os.urandom((1 << 20) + 7)  # an object of its own (small files live in bundles)
    (images / "big.bin").write_bytes(big)
    data.add(images, "images")
    done = data.checkout("images@1", to=tmp_path / "linked", link=LinkMode.HARDLINK)
    linked = tmp_path / "linked" / "big.bin"
    assert linked.read_bytes() == big
    stored = data.artifacts.local_path(data.ls("images@1", "big.bin")[1][0].digest)  # type: ignore[attr-defined]
    if _read_only_stops_this_account(tmp_path):
        assert (done.written, done.linked, done.warnings) == (52, 1, ())
        assert os.path.samefile(linked, stored)
        assert linked.stat().st_mode & 0o222 == 0
    else:  # root: a read-only mode would protect nothing, so the file is a copy
        assert (done.written, done.linked) == (52, 0)
        assert "copied instead" in done.warnings[0]
        assert not os.path.samefile(linked, stored)
    assert (tmp_path / "linked" / "labels.csv").read_text() == "id,label\n1,cat\n"  # copied
    _edit_in_place(linked)
    data.checkout("images@1", to=tmp_path / "again")  # the stored bytes are intact
    assert (tmp_path / "again" / "big.bin").read_bytes() == big
    again = data.checkout("images@1", to=tmp_path / "linked", link=LinkMode.HARDLINK, force=True)
    assert again.unchanged + again.written == 52
    assert linked.read_bytes() == big


def test_a_hardlink_add_stores_a_large_file_without_copying_it_where_that_is_safe(
    data: DataService, workspace: Path, tmp_path: Path
) -> None:
    big = workspace / "data" / "big.bin"
    content = os.urandom((1 << 20) + 3)
    big.write_bytes(content)
    _age(workspace)
    added = data.add(big, "big", link=LinkMode.HARDLINK)
    stored = data.artifacts.local_path(data.ls("big@1")[1][0].digest)  # type: ignore[attr-defined]
    if _read_only_stops_this_account(tmp_path):
        assert (added.read, added.linked, added.warnings) == (1, 1, ())
        assert os.path.samefile(big, stored)  # one file: no bytes were written
        assert big.stat().st_mode & 0o222 == 0  # read-only, so an edit in place fails
    else:  # root: the file is copied into the store, and left as it was
        assert (added.read, added.linked) == (1, 0)
        assert "copied instead" in added.warnings[0]
        assert not os.path.samefile(big, stored)
    assert data.status("big")[0].clean
    again = data.add(big, "big", link=LinkMode.HARDLINK)
    assert (again.created, again.read) == (False, 0)
    _edit_in_place(big)  # refused, or made to the user's own copy: never to the store's
    data.checkout("big@1", force=True)
    assert big.read_bytes() == content
    big.unlink()  # replacing the file, as tools do, leaves the stored bytes alone
    big.write_bytes(b"new")
    assert data.status("big")[0].modified == ["big.bin"]
    data.checkout("big@1", force=True)
    assert big.read_bytes() == content


def test_a_link_checkout_copies_where_the_file_system_cannot_link(
    data: DataService, workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    images = workspace / "data" / "images"
    big = os.urandom((1 << 20) + 7)
    (images / "big.bin").write_bytes(big)
    data.add(images, "images")

    def cannot(*_args: object) -> None:
        raise OSError(errno.EOPNOTSUPP, "Operation not supported")

    monkeypatch.setattr(links_module, "_clone", cannot)
    done = data.checkout("images@1", to=tmp_path / "copy", link=LinkMode.REFLINK)
    assert (done.written, done.linked) == (52, 0)
    assert (tmp_path / "copy" / "big.bin").read_bytes() == big
    assert [p.name for p in (tmp_path / "copy").iterdir() if p.name.endswith(".link")] == []


def test_a_damaged_object_is_never_linked(
    data: DataService, workspace: Path, tmp_path: Path
) -> None:
    images = workspace / "data" / "images"
    (images / "big.bin").write_bytes(os.urandom((1 << 20) + 7))
    data.add(images, "images")
    stored = Path(data.artifacts.local_path(data.ls("images@1", "big.bin")[1][0].digest))  # type: ignore[attr-defined]
    stored.chmod(0o644)
    with stored.open("r+b") as handle:
        handle.write(b"damage")
    with pytest.raises(IntegrityError, match=r"images@1: the stored bytes of big.bin are damaged"):
        data.checkout("images@1", to=tmp_path / "linked", link=LinkMode.HARDLINK)
    assert not (tmp_path / "linked" / "big.bin").exists()


def test_checkout_never_overwrites_local_changes_without_force(
    data: DataService, workspace: Path
) -> None:
    images = workspace / "data" / "images"
    data.add(images, "images")
    (images / "labels.csv").write_text("id,label\n1,dog\n")
    data.add(images, "images")
    (images / "labels.csv").write_text("my edit, not added\n")
    with pytest.raises(InvalidState, match=r"local changes to labels\.csv"):
        data.checkout("images@1")
    assert (images / "labels.csv").read_text() == "my edit, not added\n"
    data.checkout("images@1", force=True)
    assert (images / "labels.csv").read_text() == "id,label\n1,cat\n"
    data.checkout("images@2")  # the tracked version's own bytes are no local change
    assert (images / "labels.csv").read_text() == "id,label\n1,dog\n"


@pytest.mark.parametrize(
    ("damaged", "message"),
    [
        ("bundle", r"images@1: the stored bytes of cats/.* are damaged"),
        ("listing", r"images@1: its manifest is damaged"),
    ],
)
def test_a_damaged_object_is_named_with_the_data_version(
    data: DataService,
    stores: tuple[SqlMetadataStore, Path],
    workspace: Path,
    tmp_path: Path,
    damaged: str,
    message: str,
) -> None:
    data.add(workspace / "data" / "images", "images")
    stored = [p for p in _objects(stores[1]) if b"cairn-profile/" not in p.read_bytes()]
    listings = [p for p in stored if p.read_bytes().startswith(b'{"format":"cairn-tree/')]
    bundles = [p for p in stored if p not in listings]
    target = bundles[0] if damaged == "bundle" else listings[0]
    target.chmod(0o644)
    spoiled = bytearray(target.read_bytes())
    spoiled[-2] ^= 0x01
    target.write_bytes(bytes(spoiled))
    with pytest.raises(IntegrityError, match=message):
        data.checkout("images@1", to=tmp_path / "copy")
    copy = tmp_path / "copy"
    assert not copy.exists() or [p for p in copy.rglob("*") if p.is_file()] == []


def test_an_interrupted_add_records_nothing_and_the_next_resumes(
    data: DataService, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(snapshot_module, "BUNDLE_SIZE", 2_000)  # about 15 files a bundle
    images = workspace / "data" / "images"
    artifacts: Any = data.artifacts
    real_put = artifacts.put_stream
    calls = {"n": 0}

    def put_then_fail(stream: Any, expected: str | None = None) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # Ctrl-C after two bundles are stored
        return real_put(stream, expected)

    monkeypatch.setattr(artifacts, "put_stream", put_then_fail)
    with pytest.raises(KeyboardInterrupt):
        data.add(images, "images")
    with pytest.raises(Exception, match="not found"):
        data.log("images")  # no version, no dataset
    monkeypatch.setattr(artifacts, "put_stream", real_put)
    resumed = data.add(images, "images")
    assert resumed.version.version == 1
    assert 0 < resumed.read < 51  # the files of the stored bundles were not read again


def test_two_adds_of_the_same_data_at_once_store_it_once(
    data: DataService, stores: tuple[SqlMetadataStore, Path], workspace: Path
) -> None:
    images = workspace / "data" / "images"
    results: list[Any] = []
    threads = [
        threading.Thread(target=lambda: results.append(data.add(images, "images")))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.created for r in results) == [False, True]
    assert [v.version for v in data.log("images")] == [1]
    assert len(_objects(stores[1])) == 4  # a bundle, two listings, a profile: once each


def test_a_file_that_changes_while_it_is_read_is_refused(
    data: DataService, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_fstat = os.fstat

    def moved(fd: int) -> os.stat_result:
        st = real_fstat(fd)
        fields = list(st)
        fields[8] += 5  # st_mtime: a writer touched it meanwhile
        return os.stat_result(fields)

    monkeypatch.setattr(snapshot_module.os, "fstat", moved)
    with pytest.raises(InvalidInput, match="changed while it was being added"):
        data.add(workspace / "data" / "customers.csv", "customers")


def test_an_unreadable_file_is_named_and_nothing_is_recorded_or_left_open(
    data: DataService, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = os.open

    def refuse_one(path: str, flags: int, *args: Any) -> int:
        if str(path).endswith("cats/010.jpg"):
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, flags, *args)

    open_before = len(os.listdir("/proc/self/fd"))
    monkeypatch.setattr(snapshot_module.os, "open", refuse_one)
    with pytest.raises(InvalidInput, match=r"cats/010.jpg: cannot read it \(Permission denied\)"):
        data.add(workspace / "data" / "images", "images")
    assert len(os.listdir("/proc/self/fd")) == open_before  # the files read ahead are closed
    with pytest.raises(NotFound):
        data.version("images")


def test_adding_is_audited_and_decided_for_the_caller(
    data: DataService, stores: tuple[SqlMetadataStore, Path], workspace: Path
) -> None:
    store = stores[0]
    identity = IdentityStore(store.engine)
    identity.add_user("vera")
    identity.set_role("default", "vera", Role.VIEWER)
    vera = identity.principal("vera")
    with acting_as("vera", principal=vera), pytest.raises(PermissionDenied, match="'write'"):
        data.add(workspace / "data" / "customers.csv", "customers")
    added = data.add(workspace / "data" / "customers.csv", "customers", "October extract")
    events = AuditLog(store.engine).events(EventQuery(action="data.version.create"))
    assert [(e.content.object_id, e.content.object_digest) for e in events] == [
        ("customers@1", added.version.digest)
    ]


def test_bad_paths_are_one_clear_error(data: DataService, workspace: Path) -> None:
    with pytest.raises(InvalidInput, match="no such file or directory"):
        data.add(workspace / "nope", "nope")
    loop = workspace / "data" / "images" / "loop"
    loop.symlink_to(loop)
    with pytest.raises(InvalidInput, match="symbolic link loop"):
        data.add(workspace / "data" / "images", "images")
    loop.unlink()
    (workspace / "data" / "images" / "up").symlink_to(workspace / "data")
    with pytest.raises(InvalidInput, match="leads back to a folder above it"):
        data.add(workspace / "data", "all")


def _age(folder: Path) -> None:
    """Make every file look modified a minute ago, as files usually are."""
    for path in [folder, *folder.rglob("*")]:
        if path.is_file():
            st = path.stat()
            os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - 60_000_000_000))


def test_gc_removes_only_what_nothing_refers_to(
    data: DataService, stores: tuple[SqlMetadataStore, Path], workspace: Path
) -> None:
    artifacts: Any = data.artifacts
    images = workspace / "data" / "images"
    data.add(images, "images")
    kept_before = {o.digest for o in artifacts.stored()}
    orphan = artifacts.put_stream(io.BytesIO(b"an add that never finished")).digest
    run_file = artifacts.put_stream(io.BytesIO(b"a run's artifact")).digest
    run_artifacts = {run_file}
    recent = collect(artifacts, data.live_objects() | run_artifacts)
    assert (recent.removed, recent.kept) == (0, len(kept_before) + 2)  # all within the grace
    dry = collect(artifacts, data.live_objects() | run_artifacts, grace_seconds=0, dry_run=True)
    assert (dry.removed, dry.dry_run) == (1, True)
    assert artifacts.missing([orphan]) == set()
    done = collect(artifacts, data.live_objects() | run_artifacts, grace_seconds=0)
    assert done.removed == 1
    assert artifacts.missing([orphan, run_file]) == {orphan}
    assert {o.digest for o in artifacts.stored()} == kept_before | {run_file}
    data.checkout("images@1", to=workspace / "copy")  # every version still checks out


def test_diff_names_files_and_the_shape_of_tables(data: DataService, workspace: Path) -> None:
    images = workspace / "data" / "images"
    data.add(images, "images")
    (images / "labels.csv").write_text("id,label,source\n1,cat,web\n2,dog,web\n3,cat,lab")
    (images / "cats" / "000.jpg").unlink()
    (images / "cats" / "new.jpg").write_bytes(b"new")
    data.add(images, "images")
    found = data.diff("images@1", "images@2")
    assert (found.added, found.removed, found.modified) == (
        ["cats/new.jpg"],
        ["cats/000.jpg"],
        ["labels.csv"],
    )
    assert found.unchanged == 49
    [table] = found.tables
    assert table.path == "labels.csv"
    assert table.before == TableShape({"id": "int64", "label": "string"}, 1)
    after = {"id": "int64", "label": "string", "source": "string"}
    assert table.after == TableShape(after, 3)  # the last line has no newline
    assert (table.columns_added, table.columns_removed) == (["source"], [])


def test_a_tables_profile_is_kept_with_its_version(data: DataService, workspace: Path) -> None:
    customers = workspace / "data" / "customers.csv"
    rows = ["id,age,plan"] + [f"{i},{'' if i % 10 == 0 else 20 + i % 50},{'ab'[i % 2]}"
                              for i in range(1, 1001)]  # fmt: skip
    customers.write_text("\n".join(rows) + "\n")
    version = data.add(customers, "customers").version
    assert version.profile.startswith("blake3:")
    table = data.profile(version)["tables"]["customers.csv"]
    assert table["rows"] == 1000
    ids, ages, plans = table["columns"]
    assert (ages["name"], ages["type"], ages["missing"], ages["missing_rate"]) == (
        "age", "int64", 100, 0.1,
    )  # fmt: skip
    assert (ages["min"], ages["max"]) == (21, 69)
    assert sum(ages["bins"]["counts"]) == 900  # every present value, in ten bins
    assert (ages["bins"]["edges"][0], ages["bins"]["edges"][-1]) == (21, 69)
    assert (ids["min"], ids["max"], "categories" in ids) == (1, 1000, False)
    assert (plans["kind"], plans["categories"], plans["other"]) == (
        "text", {"a": 500, "b": 500}, 0,
    )  # fmt: skip


def test_parquet_tables_are_profiled_and_diffed_by_type(data: DataService, workspace: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = workspace / "data" / "events.parquet"
    pq.write_table(pa.table({"user": [1, 2, 3], "score": [0.5, None, 0.9]}), path)
    data.add(path, "events")
    pq.write_table(pa.table({"user": ["1", "2"], "score": [0.1, 0.2], "day": [1, 2]}), path)
    second = data.add(path, "events").version
    score = data.profile(second)["tables"]["events.parquet"]["columns"][1]
    assert (score["type"], score["min"], score["max"]) == ("double", 0.1, 0.2)
    [table] = data.diff("events@1", "events@2").tables
    assert (table.before.rows, table.after.rows) == (3, 2)  # type: ignore[union-attr]
    assert table.columns_added == ["day"]
    assert table.columns_retyped == {"user": ("int64", "string")}


def test_an_unreadable_table_is_versioned_and_says_why_it_has_no_profile(
    data: DataService, workspace: Path
) -> None:
    path = workspace / "data" / "broken.csv"
    path.write_text("a,b\n1,2\n3,4,5\n")
    added = data.add(path, "broken")
    assert added.created
    assert added.warnings == (
        "broken.csv: not profiled: not a readable CSV table: CSV parse error: Expected 2 "
        "columns, got 3: 3,4,5",
    )
    assert "error" in data.profile(added.version)["tables"]["broken.csv"]
    skipped = data.add(workspace / "data" / "customers.csv", "plain", profile=False).version
    with pytest.raises(NotFound, match="plain@1 has no profile"):
        data.profile(skipped)


def test_unchanged_tables_keep_their_profile_and_are_not_read_again(
    data: DataService, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    images = workspace / "data" / "images"
    first = data.add(images, "images").version
    profiled: list[str] = []
    real = profile_module.profile_table
    monkeypatch.setattr(
        profile_module, "profile_table", lambda src, fmt: profiled.append(src) or real(src, fmt)
    )
    (images / "cats" / "000.jpg").write_bytes(b"changed")
    second = data.add(images, "images").version
    assert profiled == []  # labels.csv did not change
    assert second.profile == first.profile
    (images / "labels.csv").write_text("id,label\n1,dog\n")
    data.add(images, "images")
    assert [Path(p).name for p in profiled] == ["labels.csv"]


def _tree(folder: Path) -> dict[str, bytes | None]:
    """Every file (its bytes) and folder (None) below ``folder``, by relative path."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() if p.is_file() else None
        for p in folder.rglob("*")
    }


def test_checkout_turns_a_file_into_a_folder_and_back(data: DataService, workspace: Path) -> None:
    images = workspace / "data" / "images"
    (images / "meta").write_text("a file\n")
    data.add(images, "images")
    first = _tree(images)
    (images / "meta").unlink()
    (images / "meta" / "deep").mkdir(parents=True)
    (images / "meta" / "a.txt").write_text("a\n")
    (images / "meta" / "deep" / "b.txt").write_text("b\n")
    data.add(images, "images")
    second = _tree(images)

    done = data.checkout("images@1")  # the folder meta/ becomes the file meta
    assert _tree(images) == first
    assert (done.written, done.removed) == (1, 2)
    data.checkout("images@2")  # and back
    assert _tree(images) == second


def test_a_folder_in_the_way_of_a_file_keeps_its_local_changes_without_force(
    data: DataService, workspace: Path
) -> None:
    images = workspace / "data" / "images"
    (images / "meta").write_text("a file\n")
    data.add(images, "images")
    (images / "meta").unlink()
    (images / "meta").mkdir()
    (images / "meta" / "a.txt").write_text("a\n")
    data.add(images, "images")
    for local in ("meta/a.txt", "meta/untracked.txt"):  # changed, then never versioned
        (images / local).write_text("mine\n")
        before = _tree(images)
        with pytest.raises(InvalidState, match=f"local changes to .*{local}"):
            data.checkout("images@1")
        assert _tree(images) == before  # nothing written, nothing removed
    data.checkout("images@1", force=True)
    assert (images / "meta").read_text() == "a file\n"


def test_a_file_in_the_way_of_a_folder_keeps_its_local_changes_without_force(
    data: DataService, workspace: Path, tmp_path: Path
) -> None:
    images = workspace / "data" / "images"
    (images / "meta").mkdir()
    (images / "meta" / "a.txt").write_text("a\n")
    data.add(images, "images")
    (images / "meta" / "a.txt").unlink()
    (images / "meta").rmdir()
    (images / "meta").write_text("a file\n")
    data.add(images, "images")
    (images / "meta").write_text("my edit\n")
    with pytest.raises(InvalidState, match="local changes to meta"):
        data.checkout("images@1")
    assert (images / "meta").read_text() == "my edit\n"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "meta").write_text("not versioned\n")  # untracked, where a folder goes
    with pytest.raises(InvalidState, match="local changes to meta"):
        data.checkout("images@1", to=elsewhere)
    data.checkout("images@1", to=elsewhere, force=True)
    assert (elsewhere / "meta" / "a.txt").read_text() == "a\n"
    data.checkout("images@1", force=True)
    assert (images / "meta" / "a.txt").read_text() == "a\n"


def test_a_dataset_that_was_a_file_and_then_a_folder_checks_out_both_ways(
    data: DataService, workspace: Path
) -> None:
    thing = workspace / "data" / "thing"
    thing.write_text("one file\n")
    data.add(thing, "thing")
    thing.unlink()
    thing.mkdir()
    (thing / "part.csv").write_text("x\n1\n")
    data.add(thing, "thing")
    data.checkout("thing@1")
    assert thing.read_text() == "one file\n"
    data.checkout("thing@2")
    assert _tree(thing) == {"part.csv": b"x\n1\n"}
    (thing / "extra.txt").write_text("not versioned\n")
    with pytest.raises(InvalidState, match=r"local changes to extra\.txt"):
        data.checkout("thing@1")
    data.checkout("thing@1", force=True)
    assert thing.read_text() == "one file\n"


def test_checkout_removes_the_folders_it_empties_and_no_others(
    data: DataService, workspace: Path
) -> None:
    images = workspace / "data" / "images"
    data.add(images, "images")
    for path in (images / "cats").iterdir():
        path.unlink()
    (images / "cats").rmdir()
    data.add(images, "images")
    data.checkout("images@1")
    (images / "mine").mkdir()  # an empty folder of the user's
    data.checkout("images@2")
    assert sorted(_tree(images)) == ["labels.csv", "mine"]


def test_a_change_of_case_in_a_name_checks_out_both_ways(
    data: DataService, workspace: Path
) -> None:
    """On a file system that ignores case, the old name is removed before the new one is
    written (the other order would remove the file just written)."""
    images = workspace / "data" / "images"
    data.add(images, "images")
    (images / "labels.csv").rename(images / "LABELS.csv")
    data.add(images, "images")
    data.checkout("images@1")
    assert (images / "labels.csv").read_text() == "id,label\n1,cat\n"
    assert "LABELS.csv" not in {p.name for p in images.iterdir()}
    data.checkout("images@2")
    assert (images / "LABELS.csv").read_text() == "id,label\n1,cat\n"


@pytest.mark.parametrize("link", [LinkMode.COPY, LinkMode.REFLINK])
def test_checkout_force_writes_names_as_long_as_the_file_system_allows(
    data: DataService, workspace: Path, link: LinkMode
) -> None:
    folder = workspace / "data" / "long"
    folder.mkdir()
    names = {"n" * 251 + ".csv": b"small\n", "b" * 251 + ".bin": os.urandom((1 << 20) + 1)}
    for name, content in names.items():
        (folder / name).write_bytes(content)
    data.add(folder, "long")
    for name in names:
        (folder / name).write_bytes(b"changed")
    data.checkout("long@1", force=True, link=link)
    assert _tree(folder) == names


def test_links_to_a_sibling_or_twice_to_one_folder_are_followed_not_loops(
    data: DataService, workspace: Path, tmp_path: Path
) -> None:
    images = workspace / "data" / "images"
    (images / "also-cats").symlink_to(images / "cats")  # a sibling
    (images / "cats-again").symlink_to(images / "cats")  # the same folder, twice
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "notes.txt").write_text("outside the project\n")
    (images / "shared").symlink_to(shared)
    added = data.add(images, "images")
    assert added.version.files == 50 * 3 + 2
    data.checkout("images@1", to=tmp_path / "copy")
    copy = tmp_path / "copy"
    assert (copy / "also-cats" / "007.jpg").read_bytes() == (
        images / "cats" / "007.jpg"
    ).read_bytes()
    assert (copy / "shared" / "notes.txt").read_text() == "outside the project\n"
    assert not any(p.is_symlink() for p in copy.rglob("*"))  # a checkout writes files


def test_add_says_which_empty_folders_a_version_leaves_out(
    data: DataService, workspace: Path, tmp_path: Path
) -> None:
    images = workspace / "data" / "images"
    (images / "todo" / "later").mkdir(parents=True)
    (images / "unused").mkdir()
    added = data.add(images, "images")
    [warning] = [w for w in added.warnings if "empty folders" in w]
    assert f"{images}/todo/later" in warning
    assert f"{images}/unused" in warning
    data.checkout("images@1", to=tmp_path / "copy")
    assert not (tmp_path / "copy" / "unused").exists()  # as the warning said
    assert not [w for w in data.add(workspace / "data" / "customers.csv").warnings if "empty" in w]


def test_add_refuses_a_path_outside_the_project_folder(
    data: DataService, workspace: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.csv"
    outside.write_text("a\n")
    with pytest.raises(InvalidInput, match="outside the project folder"):
        data.add(outside, "outside")
    with pytest.raises(NotFound):
        data.version("outside")
    (workspace / "data" / "linked.csv").symlink_to(outside)  # what the message suggests
    assert data.add(workspace / "data" / "linked.csv", "outside").version.path == "data/linked.csv"


def test_get_gives_a_copy_holding_the_versions_files_and_nothing_else(
    data: DataService, workspace: Path
) -> None:
    images = workspace / "data" / "images"
    data.add(images, "images")
    got = data.get("images@1")
    assert _tree(got) == _tree(images)
    assert data.get("images@1") == got


def test_a_file_where_a_checkout_needs_a_folder_is_one_clear_error(
    data: DataService, workspace: Path, tmp_path: Path
) -> None:
    """A file where a version's path needs a folder, a --to through a file, a --to longer
    than the system allows: one line naming the path and what to do; nothing written."""
    data.add(workspace / "data" / "customers.csv", "customers")
    data.add(workspace / "data" / "images", "images")
    shutil.rmtree(workspace / "data")
    (workspace / "data").write_text("a file of mine\n")
    for force in (False, True):
        with pytest.raises(InvalidState, match=r"project/data: a file where a folder goes; move"):
            data.checkout("customers", force=force)
    with pytest.raises(InvalidState, match=r"project/data: a file where a folder goes"):
        data.checkout("images", to=workspace / "data" / "copy")
    assert (workspace / "data").read_text() == "a file of mine\n"
    too_long = tmp_path / "/".join(["x" * 200] * 25)
    with pytest.raises(InvalidState, match=r"characters\): the path is longer than the file"):
        data.checkout("images", to=too_long)


def _as_an_ordinary_account() -> list[str]:
    """What runs a command as an account file modes apply to: root passes them by its
    capabilities, so as root the command runs without those."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root, without setpriv to drop the capabilities")
    return [setpriv, "--bounding-set", "-dac_override,-dac_read_search"]


def _cairn(project: Path, *args: str) -> list[str]:
    """The lines ``cairn`` writes to stderr; it must exit 1, as for any user error."""
    command = [*_as_an_ordinary_account(), sys.executable, "-m", "cairn", *args]
    done = subprocess.run(command, cwd=project, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    return done.stderr.splitlines()


@pytest.mark.slow
def test_files_the_account_may_not_read_or_write_are_one_line_errors(tmp_path: Path) -> None:
    project = tmp_path / "project"
    folder = project / "d"
    folder.mkdir(parents=True)
    (project / "cairn.yaml").touch()
    (folder / "a.csv").write_text("a\n")
    (folder / "b.csv").write_text("b\n")
    with Session(load_settings()) as session:
        session.data_in(project).add(folder, "ds")
    denied = "permission denied; give this account access to it and its folder (`ls -ld`"
    (folder / "b.csv").chmod(0)
    for command in (["status"], ["checkout", "ds@1", "--force"]):
        [line] = _cairn(project, "data", *command)
        assert line.startswith(f"error: {folder / 'b.csv'}: {denied}")
    (folder / "b.csv").chmod(0o644)
    (folder / "a.csv").write_text("changed\n")
    folder.chmod(0o555)
    try:
        [line] = _cairn(project, "data", "checkout", "ds@1", "--force")
    finally:
        folder.chmod(0o755)
    assert line.startswith(f"error: {folder}: {denied}")
    assert sorted(p.name for p in folder.iterdir()) == ["a.csv", "b.csv"]  # nothing left
    if shutil.which("chattr") and _chattr("+i", folder / "a.csv"):  # only root may
        try:
            [line] = _cairn(project, "data", "checkout", "ds@1", "--force")
        finally:
            _chattr("-i", folder / "a.csv")
        assert line.startswith(f"error: {folder / 'a.csv'}: not permitted (is it immutable?")


def _chattr(change: str, path: Path) -> bool:
    return subprocess.run(["chattr", change, str(path)], capture_output=True).returncode == 0

"""A run's artifact paths: what the embedded store records from odd file names, and what a
download does with a manifest recorded before paths were checked."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import insert, select

import cairn
from cairn.core.artifact import ArtifactEntry, check_entries, first_folder_clash
from cairn.errors import InvalidInput
from cairn.stores.metadata import schema as t
from cairn.stores.metadata.engine import write_transaction
from cairn.stores.metadata.sql import SqlMetadataStore


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("name", ["back\\slash.txt", "line\nbreak.txt", "bell\x07.txt"])
def test_a_file_name_no_manifest_may_hold_is_refused_naming_it(workdir: Path, name: str) -> None:
    (workdir / name).write_text("x")
    (workdir / "folder").mkdir()
    (workdir / "folder" / name).write_text("x")
    with cairn.start_run() as run:
        with pytest.raises(InvalidInput, match="artifact path"):
            run.log_artifact(name)
        with pytest.raises(InvalidInput, match="artifact path"):
            run.log_artifacts("folder")
    assert cairn.sdk.session().tracking.list_artifacts(run.id) == []


def test_artifact_paths_given_loosely_are_recorded_clean(workdir: Path) -> None:
    (workdir / "a.txt").write_text("a")
    with cairn.start_run() as run:
        run.log_artifact("a.txt", artifact_path="./reports//daily/")
        run.log_artifact("a.txt", artifact_path=".")
    paths = [e.path for e in cairn.sdk.session().tracking.metadata.list_artifacts(run.id)]
    assert paths == ["a.txt", "reports/daily/a.txt"]


def test_a_manifest_recorded_before_paths_were_checked_is_never_written_half(
    workdir: Path, cairn_home: Path
) -> None:
    """An empty path (it hid every other file) or a file that is a folder too: the
    download says which, writes nothing, and the listing still shows every file."""
    (workdir / "a.txt").write_text("a")
    with cairn.start_run() as run:
        entry = run.log_artifact("a.txt")
    store = SqlMetadataStore(f"sqlite:///{cairn_home / 'cairn.db'}")
    with write_transaction(store.engine) as conn:
        pk = conn.execute(select(t.runs.c.pk).where(t.runs.c.id == run.id)).scalar_one()
        row = {"run_pk": pk, "path": "", "digest": entry.digest, "size": 1}
        conn.execute(insert(t.run_artifacts).values(**row))
    store.close()
    tracking = cairn.sdk.session().tracking
    assert [e.path for e in tracking.list_artifacts(run.id)] == ["", "a.txt"]
    with pytest.raises(InvalidInput, match="cannot be downloaded: entries"):
        tracking.download_artifacts(run.id, ".", workdir / "out")
    assert not (workdir / "out").exists()


def test_a_file_and_a_folder_of_the_same_name_clash_whatever_sorts_between() -> None:
    assert first_folder_clash(["a"], ["a", "a-b", "a.b", "a/b"]) == ("a", "a/b")
    assert first_folder_clash(["a"], ["a", "a-b", "a.b", "ab/c"]) is None
    digest = "blake3:" + "0" * 64
    with pytest.raises(InvalidInput, match=r"entries\[1\]\.size"):
        check_entries([ArtifactEntry("a", digest, 1), ArtifactEntry("b", digest, -1)])
    with pytest.raises(InvalidInput, match=r"entries\[0\]\.digest"):
        check_entries([ArtifactEntry("a", "md5:0", 1)])

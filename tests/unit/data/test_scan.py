"""The scan of a folder: links followed, loops found by the chain of folders above, empty
folders reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from cairn.core.data import DataKind
from cairn.data.scan import scan
from cairn.errors import InvalidInput


def _files(root: Path) -> list[str]:
    return [f.rel for f in scan(root).files]


def test_a_link_to_a_folder_above_is_a_loop_however_deep(tmp_path: Path) -> None:
    (tmp_path / "a" / "b" / "c").mkdir(parents=True)
    (tmp_path / "a" / "b" / "c" / "up").symlink_to(tmp_path / "a")
    with pytest.raises(InvalidInput, match=r"c/up: a symbolic link loop"):
        scan(tmp_path)


def test_links_elsewhere_are_entered_as_often_as_they_lead_there(tmp_path: Path) -> None:
    (tmp_path / "x" / "deep").mkdir(parents=True)
    (tmp_path / "x" / "deep" / "f.txt").write_text("f")
    (tmp_path / "y").mkdir()
    (tmp_path / "y" / "to-x").symlink_to(tmp_path / "x")  # a folder beside, not above
    (tmp_path / "y" / "to-deep").symlink_to(tmp_path / "x" / "deep")  # twice, then
    assert _files(tmp_path) == ["x/deep/f.txt", "y/to-deep/f.txt", "y/to-x/deep/f.txt"]
    (tmp_path / "x" / "deep" / "to-y").symlink_to(tmp_path / "y")
    with pytest.raises(InvalidInput, match="symbolic link loop"):
        scan(tmp_path)  # x/deep/to-y/to-x leads back to x, above it on that way down


def test_empty_folders_and_every_folder_are_reported(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "only-folders" / "inner").mkdir(parents=True)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "f.txt").write_text("f")
    found = scan(tmp_path)
    assert (found.kind, [f.rel for f in found.files]) == (DataKind.DIRECTORY, ["full/f.txt"])
    assert sorted(found.empty) == ["empty", "only-folders/inner"]
    assert sorted(found.folders) == ["", "empty", "full", "only-folders", "only-folders/inner"]
    assert scan(tmp_path / "empty").empty == [""]

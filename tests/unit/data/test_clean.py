"""Clean marks: a working copy found clean is recognised by one fingerprint, never while a
file is racy, and never after any file's stat moved."""

from __future__ import annotations

import os
from pathlib import Path

from cairn.data.clean import CleanMarks
from cairn.data.scan import scan

OLD_NS = 1_600_000_000 * 10**9


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    for name in ("a.bin", "b.bin"):
        (folder / name).write_bytes(name.encode())
        os.utime(folder / name, ns=(OLD_NS, OLD_NS))
    return folder


def test_a_clean_mark_holds_until_a_file_changes(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    marks = CleanMarks(tmp_path / "clean.json")
    marks.mark_clean(str(folder), "blake3:v1", scan(folder)[1])
    marks.save()
    again = CleanMarks(tmp_path / "clean.json")
    assert again.is_clean(str(folder), "blake3:v1", scan(folder)[1])
    assert not again.is_clean(str(folder), "blake3:v2", scan(folder)[1])  # another version
    (folder / "c.bin").write_bytes(b"c")
    os.utime(folder / "c.bin", ns=(OLD_NS, OLD_NS))
    assert not again.is_clean(str(folder), "blake3:v1", scan(folder)[1])  # a file more
    (folder / "c.bin").unlink()
    os.utime(folder / "a.bin", ns=(OLD_NS, OLD_NS + 1))
    assert not again.is_clean(str(folder), "blake3:v1", scan(folder)[1])  # a file touched


def test_nothing_is_marked_while_a_file_is_racy(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    (folder / "a.bin").write_bytes(b"just now")  # its mtime is this very moment
    marks = CleanMarks(tmp_path / "clean.json")
    marks.mark_clean(str(folder), "blake3:v1", scan(folder)[1])
    assert not marks.is_clean(str(folder), "blake3:v1", scan(folder)[1])


def test_a_damaged_marks_file_is_ignored(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    (tmp_path / "clean.json").write_bytes(b"{not json")
    assert not CleanMarks(tmp_path / "clean.json").is_clean(str(folder), "v", scan(folder)[1])

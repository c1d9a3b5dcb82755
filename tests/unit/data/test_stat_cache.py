"""The stat cache trusts an entry only while the file's stat is unchanged and not racy."""

from __future__ import annotations

import os
from pathlib import Path

from cairn.data.stat_cache import Cached, StatCache

DIGEST = "blake3:" + "a" * 64


def test_an_entry_is_trusted_only_while_the_file_is_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"one")
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - 60_000_000_000))  # a minute old
    cache = StatCache(tmp_path / "cache.json")
    cache.put(str(path), path.stat(), DIGEST)
    cache.save()
    again = StatCache(tmp_path / "cache.json")
    assert again.get(str(path), path.stat()) == Cached(DIGEST, "", 0)
    path.write_bytes(b"two")  # same size, new mtime and ctime
    assert again.get(str(path), path.stat()) is None


def test_a_file_modified_just_before_the_cache_was_written_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"one")  # modified now: it could change again within the same tick
    cache = StatCache(tmp_path / "cache.json")
    cache.put(str(path), path.stat(), DIGEST)
    cache.save()
    assert StatCache(tmp_path / "cache.json").get(str(path), path.stat()) is None


def test_a_damaged_cache_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "cache.json").write_text("{not json")
    path = tmp_path / "f.bin"
    path.write_bytes(b"x")
    assert StatCache(tmp_path / "cache.json").get(str(path), path.stat()) is None

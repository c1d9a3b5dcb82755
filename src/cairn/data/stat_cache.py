"""What each file hashed to, keyed by what ``stat`` says of it, so an unchanged file is
never read twice (git's index does the same for the same reason).

An entry is trusted only while the file's device, inode, size, mtime and ctime are those
recorded. A file modified within a second before the cache was written might change again
without its mtime moving (timestamps are only as fine as the filesystem's clock tick),
so such *racy* entries are not trusted: the next look re-hashes them, as git does.

The cache is one JSON file in the Cairn home, written whole and atomically; a damaged or
unreadable cache is ignored (every file is then hashed again), never an error.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from cairn.core.data import FileEntry
from cairn.localfs.atomic import write_atomically
from cairn.localfs.digest import hash_file

_FORMAT = "cairn-stat-cache/1"
RACY_NS = 1_000_000_000  # entries modified this close to the cache write are re-hashed


class Cached(NamedTuple):
    digest: str
    bundle: str  # where the bytes are stored ("" when the file is its own object)
    offset: int


_cached = tuple.__new__  # builds a Cached in C: a lookup per file must stay cheap


class StatCache:
    def __init__(self, path: Path) -> None:
        self.path = path
        # path -> [device, inode, size, mtime_ns, ctime_ns, digest, bundle, offset]: the
        # shape the file stores, so loading it builds nothing per entry.
        self._entries: dict[str, list[Any]] = {}
        self._written_ns = 0
        self._changed = False
        self._load()

    def get(self, path: str, st: os.stat_result) -> Cached | None:
        """What ``path`` hashed to, if it has not changed since (and is not racy)."""
        e = self._entries.get(path)
        if (
            e is None
            or e[3] != st.st_mtime_ns
            or e[2] != st.st_size
            or e[1] != st.st_ino
            or e[4] != st.st_ctime_ns
            or e[0] != st.st_dev
            or st.st_mtime_ns >= self._written_ns - RACY_NS
        ):
            return None
        return _cached(Cached, (e[5], e[6], e[7]))

    def put(
        self, path: str, st: os.stat_result, digest: str, bundle: str = "", offset: int = 0
    ) -> None:
        self._entries[path] = [
            st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns,
            digest, bundle, offset,
        ]  # fmt: skip
        self._changed = True

    def digest(self, path: str, st: os.stat_result, entry: FileEntry | None = None) -> str:
        """What the file hashes to now, read only if the cache cannot say; when it holds
        ``entry``'s bytes, where those are stored is remembered too."""
        cached = self.get(path, st)
        if cached is not None:
            return cached.digest
        digest = hash_file(Path(path))
        if entry is not None and digest == entry.digest:
            self.put(path, st, digest, entry.bundle, entry.offset)
        else:
            self.put(path, st, digest)
        return digest

    def save(self) -> None:
        """Write the cache if anything was added; the time of writing makes recent
        entries racy for the next reader."""
        if not self._changed:
            return
        written_ns = time.time_ns()
        document = {"format": _FORMAT, "written_ns": written_ns, "entries": self._entries}
        write_atomically([orjson.dumps(document)], self.path)
        self._written_ns, self._changed = written_ns, False

    def _load(self) -> None:
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            document = orjson.loads(self.path.read_bytes())
            if document["format"] == _FORMAT and isinstance(document["entries"], dict):
                self._written_ns = int(document["written_ns"])
                self._entries = document["entries"]

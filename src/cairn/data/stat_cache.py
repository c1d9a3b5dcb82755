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
import json
import os
import time
from pathlib import Path
from typing import NamedTuple

from cairn.localfs.atomic import write_atomically

_FORMAT = "cairn-stat-cache/1"
RACY_NS = 1_000_000_000  # entries modified this close to the cache write are re-hashed


class Cached(NamedTuple):
    digest: str
    bundle: str  # where the bytes are stored ("" when the file is its own object)
    offset: int


_Key = tuple[int, int, int, int, int]  # device, inode, size, mtime_ns, ctime_ns


def stat_key(st: os.stat_result) -> _Key:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class StatCache:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._entries: dict[str, tuple[_Key, Cached]] = {}
        self._written_ns = 0
        self._changed = False
        self._load()

    def get(self, path: str, st: os.stat_result) -> Cached | None:
        """What ``path`` hashed to, if it has not changed since (and is not racy)."""
        found = self._entries.get(path)
        if found is None:
            return None
        key, cached = found
        if key != stat_key(st) or st.st_mtime_ns >= self._written_ns - RACY_NS:
            return None
        return cached

    def put(self, path: str, st: os.stat_result, cached: Cached) -> None:
        self._entries[path] = (stat_key(st), cached)
        self._changed = True

    def save(self) -> None:
        """Write the cache if anything was added; the time of writing makes recent
        entries racy for the next reader."""
        if not self._changed:
            return
        written_ns = time.time_ns()
        entries = {p: [*key, *cached] for p, (key, cached) in self._entries.items()}
        data = json.dumps({"format": _FORMAT, "written_ns": written_ns, "entries": entries})
        write_atomically([data.encode()], self.path)
        self._written_ns, self._changed = written_ns, False

    def _load(self) -> None:
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            document = json.loads(self.path.read_bytes())
            if document["format"] != _FORMAT:
                return
            self._written_ns = int(document["written_ns"])
            self._entries = {
                path: ((e[0], e[1], e[2], e[3], e[4]), Cached(e[5], e[6], e[7]))
                for path, e in document["entries"].items()
            }

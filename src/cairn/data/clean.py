"""Working copies known to be clean, so that ``status`` with nothing changed is one scan.

When a dataset's files are found exactly as its tracked version has them, Cairn records a
fingerprint: one digest over what ``stat`` says of every file (path, device, inode, size,
mtime, ctime). The next ``status`` scans the folder and compares that one digest; only if
it differs does it look each file up in the stat cache and the version's manifest. Like
the stat cache, a fingerprint is not recorded while any file is *racy* (modified within a
second of now), since such a file could change again without its mtime moving.

The marks are one small JSON file in the Cairn home; a damaged one is ignored.
"""

from __future__ import annotations

import contextlib
import time
from array import array
from pathlib import Path

import orjson

from cairn.data.scan import Found
from cairn.data.stat_cache import RACY_NS
from cairn.localfs.atomic import write_atomically
from cairn.localfs.digest import hasher

_KEPT = 256  # folders remembered; the oldest marks go first


def fingerprint(present: list[Found]) -> str:
    numbers = array("q")
    add = numbers.extend
    for f in present:  # once per file: packed integers, not formatted text
        st = f.stat
        add((st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns))
    found = hasher()
    found.update(numbers.tobytes())
    found.update("\0".join([f.rel for f in present]).encode("utf-8", "surrogateescape"))
    return str(found.hexdigest())


class CleanMarks:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._marks: dict[str, str] = {}
        self._changed = False
        with contextlib.suppress(OSError, ValueError, TypeError):
            loaded = orjson.loads(path.read_bytes())
            if isinstance(loaded, dict):
                self._marks = {str(k): str(v) for k, v in loaded.items()}

    def is_clean(self, folder: str, version_digest: str, present: list[Found]) -> bool:
        """Whether the files are exactly as they were when found clean for that version."""
        mark = self._marks.get(f"{folder}\n{version_digest}")
        return mark is not None and mark == fingerprint(present)

    def mark_clean(self, folder: str, version_digest: str, present: list[Found]) -> None:
        """Remember that these files are the version's (unless one is racy)."""
        # A write moves mtime to now: only a file written within the clock tick of this
        # look could change again unseen, as the stat cache also assumes.
        newest = max((f.stat.st_mtime_ns for f in present), default=0)
        if newest >= time.time_ns() - RACY_NS:
            return
        key = f"{folder}\n{version_digest}"
        self._marks.pop(key, None)
        self._marks[key] = fingerprint(present)  # last in: the newest
        while len(self._marks) > _KEPT:
            del self._marks[next(iter(self._marks))]
        self._changed = True

    def save(self) -> None:
        if self._changed:
            write_atomically([orjson.dumps(self._marks)], self.path)
            self._changed = False

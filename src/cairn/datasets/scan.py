"""The files below a path, with what ``stat`` says of each: one ``scandir`` pass.

Symbolic links are followed (a dataset holds the bytes a link points at); a link that
points nowhere, a loop of links, a file that cannot be read and anything that is not a
regular file or a directory are each a clear error naming the path.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import NamedTuple

from cairn.core.data import DataKind
from cairn.errors import InvalidInput


class Found(NamedTuple):
    rel: str  # relative to the scanned root, POSIX separators
    path: str  # as opened
    stat: os.stat_result


_found = tuple.__new__  # builds a Found in C: a scan makes one per file


def scan(root: Path) -> tuple[DataKind, list[Found]]:
    """Every regular file at or below ``root``, sorted by relative path.

    Raises:
        InvalidInput: ``root`` does not exist, or something below it cannot be read.
    """
    try:
        st = os.stat(root)
    except OSError as exc:
        raise InvalidInput(_message(root, exc)) from exc
    if stat.S_ISREG(st.st_mode):
        return DataKind.FILE, [Found(root.name, str(root), st)]
    if not stat.S_ISDIR(st.st_mode):
        raise InvalidInput(f"{root}: not a regular file or a directory")
    found: list[Found] = []
    take = found.append
    is_file = stat.S_ISREG
    seen = {(st.st_dev, st.st_ino)}  # directories entered: a link back to one is a loop
    pending = [(str(root), "")]
    while pending:
        folder, prefix = pending.pop()
        try:
            with os.scandir(folder) as entries:
                # The loop runs once per file: plain locals, no call for the usual case.
                for entry in entries:
                    try:
                        st = entry.stat()  # follows links
                    except OSError as exc:
                        raise InvalidInput(_message(Path(entry.path), exc)) from exc
                    if is_file(st.st_mode):
                        take(_found(Found, (prefix + entry.name, entry.path, st)))
                    else:
                        _enter(entry, st, prefix, pending, seen)
        except OSError as exc:
            raise InvalidInput(_message(Path(folder), exc)) from exc
    found.sort(key=lambda f: f.rel)
    return DataKind.DIRECTORY, found


def _enter(
    entry: os.DirEntry[str],
    st: os.stat_result,
    prefix: str,
    pending: list[tuple[str, str]],
    seen: set[tuple[int, int]],
) -> None:
    """Queue a folder to scan; anything else that is not a regular file is an error."""
    if not stat.S_ISDIR(st.st_mode):
        raise InvalidInput(f"{entry.path}: not a regular file or a directory")
    if (st.st_dev, st.st_ino) in seen:
        raise InvalidInput(
            f"{entry.path}: a symbolic link loop (it leads back to a folder above it)"
        )
    seen.add((st.st_dev, st.st_ino))
    pending.append((entry.path, f"{prefix}{entry.name}/"))


def _message(path: Path, exc: OSError) -> str:
    if exc.errno == errno.ENOENT:
        if os.path.islink(path):
            return f"{path}: a symbolic link to something that does not exist"
        return f"{path}: no such file or directory"
    if exc.errno == errno.ELOOP:
        return f"{path}: a symbolic link loop"
    if exc.errno == errno.EACCES:
        return f"{path}: permission denied"
    return f"{path}: cannot read it ({exc.strerror or exc})"

"""The files below a path, with what ``stat`` says of each: one ``scandir`` pass.

Symbolic links are followed: a dataset holds the bytes a link points at, wherever that is,
and a checkout writes them back as regular files (it never makes a link). A link to a
folder is entered like the folder itself, as often as links lead to it (two links to one
folder, or a link to a sibling, give its files under each path); only a link to a folder
it is already inside (one of its ancestors on the way down) is a loop. A link that points
nowhere, a loop, a file that cannot be read and anything that is not a regular file or a
directory are each a clear error naming the path.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import NamedTuple

from cairn.core.data import DataKind
from cairn.data.file_error import described
from cairn.errors import InvalidInput


class Found(NamedTuple):
    rel: str  # relative to the scanned root, POSIX separators
    path: str  # as opened
    stat: os.stat_result


_found = tuple.__new__  # builds a Found in C: a scan makes one per file


class Scanned(NamedTuple):
    kind: DataKind
    files: list[Found]  # sorted by relative path
    folders: list[str]  # every folder entered, relative ("": the root itself)
    empty: list[str]  # of those, the folders holding nothing at all


class _Folder(NamedTuple):
    path: str
    prefix: str  # its relative path and a "/", or "" for the root
    chain: frozenset[tuple[int, int]]  # (device, inode) of it and every folder above it


def scan(root: Path) -> Scanned:
    """Every regular file at or below ``root``, sorted by relative path.

    Raises:
        InvalidInput: ``root`` does not exist, or something below it cannot be read.
    """
    try:
        st = os.stat(root)
    except OSError as exc:
        raise InvalidInput(described(exc, str(root))) from exc
    if stat.S_ISREG(st.st_mode):
        return Scanned(DataKind.FILE, [Found(root.name, str(root), st)], [], [])
    if not stat.S_ISDIR(st.st_mode):
        raise InvalidInput(f"{root}: not a regular file or a directory")
    found: list[Found] = []
    take = found.append
    is_file = stat.S_ISREG
    result = Scanned(DataKind.DIRECTORY, found, [], [])
    pending = [_Folder(str(root), "", frozenset({(st.st_dev, st.st_ino)}))]
    while pending:
        folder = pending.pop()
        result.folders.append(folder.prefix[:-1])
        before = len(found), len(pending)
        try:
            with os.scandir(folder.path) as entries:
                # The loop runs once per file: plain locals, no call for the usual case.
                for entry in entries:
                    try:
                        st = entry.stat()  # follows links
                    except OSError as exc:
                        raise InvalidInput(described(exc, entry.path)) from exc
                    if is_file(st.st_mode):
                        take(_found(Found, (folder.prefix + entry.name, entry.path, st)))
                    else:
                        pending.append(_inside(folder, entry, st))
        except OSError as exc:
            raise InvalidInput(described(exc, folder.path)) from exc
        if (len(found), len(pending)) == before:
            result.empty.append(folder.prefix[:-1])
    found.sort(key=lambda f: f.rel)
    return result


def scan_present(root: Path) -> Scanned:
    """What ``scan`` finds at ``root``, or nothing if nothing is there.

    Raises:
        InvalidInput: something below it cannot be read.
    """
    if not root.exists() and not root.is_symlink():
        return Scanned(DataKind.DIRECTORY, [], [], [])
    return scan(root)


def _inside(folder: _Folder, entry: os.DirEntry[str], st: os.stat_result) -> _Folder:
    """A folder to scan; anything else that is not a regular file is an error."""
    if not stat.S_ISDIR(st.st_mode):
        raise InvalidInput(f"{entry.path}: not a regular file or a directory")
    key = (st.st_dev, st.st_ino)
    if key in folder.chain:
        raise InvalidInput(
            f"{entry.path}: a symbolic link loop (it leads back to a folder above it)"
        )
    return _Folder(entry.path, f"{folder.prefix}{entry.name}/", folder.chain | {key})

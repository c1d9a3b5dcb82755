"""Bringing a folder (or a file) to a data version: what to write, what to leave, what to
remove, and what is in the way.

Paths are keyed relative to the checkout's target, and the target itself is the key ``""``:
a version of one file has its file there, a version of a folder has its files below it.
A path that is a file on one side and a folder on the other, the target included, is
then one more case of the same rules:

- a file that is neither as the version has it nor as the tracked version (``known``) has
  it is a local change, and a checkout overwrites or removes none without ``force``;
- an untracked file is left alone unless it is in the way: inside a folder where the
  version has a file, or where the version has a folder. Then it counts as a local change;
- the tracked version's files that this one lacks are removed first, with the folders that
  leaves empty; then what is in the way (a folder where a file goes is removed whole,
  without following a link inside it; a link is removed, never what it points at); only
  then are files written.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field

from cairn.core.data import DataKind, DataVersion, FileEntry, entry_name_problem
from cairn.data.scan import Found, Scanned
from cairn.data.stat_cache import StatCache
from cairn.errors import IntegrityError

ROOT = ""  # the key of the target itself

_SHOWN_CONFLICTS = 5


@dataclass
class Plan:
    writes: list[FileEntry] = field(default_factory=list)
    unchanged: int = 0
    removals: list[Found] = field(default_factory=list)  # tracked before, not in this version
    in_the_way: list[str] = field(default_factory=list)  # keys cleared before writing
    conflicts: list[str] = field(default_factory=list)  # keys of local changes in the way


def keyed(version: DataVersion, entries: list[FileEntry]) -> dict[str, FileEntry]:
    """A version's files by key.

    Raises:
        IntegrityError: a version of one file whose manifest does not hold exactly one.
    """
    if version.kind == DataKind.DIRECTORY:
        return {e.path: e for e in entries}
    if len(entries) != 1:
        raise IntegrityError(f"{version.ref}: a file, but its manifest lists {len(entries)}")
    return {ROOT: entries[0]}


def file_name(version: DataVersion) -> str:
    """The name of a version of one file: the last part of its recorded path.

    Raises:
        IntegrityError: that part is not a file name.
    """
    name = version.path.rpartition("/")[2]
    if (problem := entry_name_problem(name)) is not None:
        raise IntegrityError(f"{version.ref}: its path {version.path!r} names no file ({problem})")
    return name


def present(scanned: Scanned) -> tuple[dict[str, Found], set[str]]:
    """What a scan of the target found, by key: its files, and its folders."""
    if scanned.kind == DataKind.FILE:
        return {ROOT: scanned.files[0]}, set()
    return {f.rel: f for f in scanned.files}, set(scanned.folders)


def plan(
    wanted: dict[str, FileEntry],
    found: dict[str, Found],
    folders: set[str],
    known: dict[str, str],
    cache: StatCache,
    force: bool,
) -> Plan:
    """What a checkout writes, leaves, removes and clears; ``known``: the digests of the
    tracked version's files, by key."""
    result = Plan()
    for key, entry in wanted.items():
        here = found.get(key)
        if here is None:
            result.writes.append(entry)
            continue
        now = cache.digest(here.path, here.stat, entry)
        if now == entry.digest:
            result.unchanged += 1
        elif force or known.get(key) == now:
            result.writes.append(entry)
        else:
            result.conflicts.append(key)
    result.in_the_way = [key for key in folders if key in wanted]
    _plan_the_rest(wanted, found, known, cache, force, result)
    return result


def _plan_the_rest(
    wanted: dict[str, FileEntry],
    found: dict[str, Found],
    known: dict[str, str],
    cache: StatCache,
    force: bool,
    result: Plan,
) -> None:
    """The files present that the version does not have: tracked ones go (unless changed),
    untracked ones stay (unless in the way)."""
    parents: set[str] | None = None  # the folders the version's files are in, when needed
    for key, here in found.items():
        if key in wanted:
            continue
        if key in known:
            if force or cache.digest(here.path, here.stat) == known[key]:
                result.removals.append(here)
            else:
                result.conflicts.append(key)
            continue
        if parents is None:
            parents = _parents(wanted)
        if key in parents:  # a file where the version has a folder
            (result.in_the_way if force else result.conflicts).append(key)
        elif not force and _inside_one_of(key, wanted):  # it goes with its folder
            result.conflicts.append(key)


def _parents(wanted: dict[str, FileEntry]) -> set[str]:
    """Every folder the version's files are in, the target's own key among them."""
    found: set[str] = set()
    for key in wanted:
        while key:
            key = key.rpartition("/")[0]
            if key in found:
                break
            found.add(key)
    return found


def _inside_one_of(key: str, wanted: dict[str, FileEntry]) -> bool:
    while key:
        key = key.rpartition("/")[0]
        if key in wanted:
            return True
    return False


def conflict_message(version: DataVersion, conflicts: list[str], target: str) -> str:
    shown = ", ".join(key or target for key in conflicts[:_SHOWN_CONFLICTS])
    if len(conflicts) > _SHOWN_CONFLICTS:
        shown += f" and {len(conflicts) - _SHOWN_CONFLICTS} more"
    return (
        f"checking out {version.ref} would overwrite local changes to {shown}; add them "
        "as a new version first, or pass --force to discard them"
    )


def clear_the_way(done: Plan, root: str) -> None:
    """Remove the files the version does not have, the folders that leaves empty (never
    ``root``), and what is in the way of the files to write."""
    emptied: set[str] = set()
    for here in done.removals:
        with contextlib.suppress(FileNotFoundError):
            os.remove(here.path)
        emptied.add(os.path.dirname(here.path))
    _remove_emptied(emptied, root)
    for key in done.in_the_way:
        _clear(f"{root}/{key}" if key else root)


def _remove_emptied(folders: set[str], root: str) -> None:
    """Each folder and those above it, up to ``root``, that hold nothing any more."""
    candidates: set[str] = set()
    inside = root.rstrip("/") + "/"
    for folder in folders:
        while folder.startswith(inside) and folder not in candidates:
            candidates.add(folder)
            folder = os.path.dirname(folder)
    for folder in sorted(candidates, key=len, reverse=True):  # a folder's own come first
        with contextlib.suppress(OSError):  # not empty, or a link: it stays
            os.rmdir(folder)


def _clear(path: str) -> None:
    """Remove a file, a link, or a folder with everything in it (links inside it are
    removed, not followed)."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


def folders_touched(done: Plan, version: DataVersion, root: str) -> set[str]:
    """Every folder the plan writes a file into or removes one from (each once: a checkout
    of many files has few folders)."""
    if version.kind == DataKind.FILE:
        touched = {os.path.dirname(root)} if done.writes else set()
    else:
        keys = {entry.path.rpartition("/")[0] for entry in done.writes}
        touched = {f"{root}/{key}" if key else root for key in keys}
    touched.update(os.path.dirname(here.path) for here in done.removals)
    touched.update(os.path.dirname(f"{root}/{key}" if key else root) for key in done.in_the_way)
    return touched


def placer(version: DataVersion, root: str) -> Callable[[FileEntry], str]:
    """Where each file of the version goes (a string: a checkout makes one per file)."""
    if version.kind == DataKind.FILE:
        return lambda _entry: root
    return lambda entry: f"{root}/{entry.path}"

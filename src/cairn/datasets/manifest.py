"""A version's manifest: one sorted listing per directory, each a content-addressed object.

A listing (a *tree*) is canonical JSON::

    {"format": "cairn-tree/1", "entries": [
        ["a.csv", "f", "blake3:…", 1024, "", 0],               # file: digest, size, bundle, offset
        ["images", "d", "blake3:…", 52428800, 1000]]}          # directory: tree, bytes, files

sorted by name, so the same files always give the same bytes and the same digest. The
root tree's digest names the version. A change to one file rewrites its directory's
listing and those above it, nothing else: the other listings keep their digests and are
already stored.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from cairn.core.data import FileEntry
from cairn.errors import IntegrityError
from cairn.localfs.digest import digest_of, hasher

TREE_FORMAT = "cairn-tree/1"
_entry = tuple.__new__  # builds a FileEntry in C: manifests list every file


@dataclass(frozen=True, slots=True)
class Manifest:
    """The trees of a version, keyed by digest, and its root."""

    root: str
    trees: dict[str, bytes]
    files: int
    bytes: int


def build(entries: Iterable[FileEntry]) -> Manifest:
    """The trees of these files (paths relative to the root, POSIX separators)."""
    by_dir: dict[str, list[list[Any]]] = defaultdict(list)
    dirs: set[str] = {""}
    for entry in entries:
        parent, _, name = entry.path.rpartition("/")
        by_dir[parent].append([name, "f", entry.digest, entry.size, entry.bundle, entry.offset])
        while parent and parent not in dirs:  # every ancestor gets a listing
            dirs.add(parent)
            parent = parent.rpartition("/")[0]
    trees: dict[str, bytes] = {}
    root = ""
    # Deepest first, so each directory's listing is done before its parent's needs it.
    for folder in sorted(dirs, key=lambda d: d.count("/") + bool(d), reverse=True):
        listing = by_dir[folder]
        size = sum(e[3] for e in listing)
        files = sum(1 if e[1] == "f" else e[4] for e in listing)
        data = encode_tree(listing)
        digest = digest_of(hasher().update(data))
        trees[digest] = data
        if folder:
            parent = folder.rpartition("/")[0]
            by_dir[parent].append([folder.rpartition("/")[2], "d", digest, size, files])
        else:
            root, total_size, total_files = digest, size, files
    return Manifest(root, trees, total_files, total_size)


def encode_tree(entries: list[list[Any]]) -> bytes:
    """Canonical: entries sorted by name, compact UTF-8 JSON, keys in a fixed order."""
    ordered = sorted(entries, key=lambda e: e[0])
    return orjson.dumps({"format": TREE_FORMAT, "entries": ordered})


def decode_tree(data: bytes, digest: str) -> list[list[Any]]:
    """Raises:
    IntegrityError: the object is not a tree of this format.
    """
    try:
        document = orjson.loads(data)
        if document["format"] != TREE_FORMAT:
            raise ValueError(document["format"])
        entries: list[list[Any]] = document["entries"]
    except (orjson.JSONDecodeError, ValueError, KeyError, TypeError) as exc:
        raise IntegrityError(f"object {digest} is not a data manifest ({exc})") from exc
    return entries


def walk(root: str, read: Callable[[str], bytes]) -> Iterator[FileEntry]:
    """Every file of the manifest rooted at ``root``, in path order; ``read`` fetches a
    tree object by digest."""
    yield from _walk(root, "", read)


def _walk(digest: str, prefix: str, read: Callable[[str], bytes]) -> Iterator[FileEntry]:
    for entry in decode_tree(read(digest), digest):
        path = f"{prefix}{entry[0]}"
        if entry[1] == "d":
            yield from _walk(entry[2], f"{path}/", read)
        else:
            yield _entry(FileEntry, (path, entry[2], entry[3], entry[4], entry[5]))

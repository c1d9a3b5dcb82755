"""A version's manifest: one sorted listing per directory, each a content-addressed object.

A listing (a *tree*) is canonical JSON::

    {"format": "cairn-tree/1", "entries": [
        ["a.csv", "f", "blake3:…", 1024, "", 0],               # file: digest, size, bundle, offset
        ["images", "d", "blake3:…", 52428800, 1000]]}          # directory: tree, bytes, files

sorted by name, so the same files always give the same bytes and the same digest. The
root tree's digest names the version. A change to one file rewrites its directory's
listing and those above it, nothing else: the other listings keep their digests and are
already stored.

A listing read back is checked before anything follows it (``decode_tree``): each entry
has the shape above, and a name that is one path component (``entry_name_problem``), so
a file written at ``folder/name`` stays in ``folder``, whichever store, server or remote
the listing came from.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from cairn.core.artifact import check_digest
from cairn.core.data import (
    DataKind,
    FileEntry,
    NewDataVersion,
    entry_name_problem,
    first_bad_entry_name,
)
from cairn.errors import IntegrityError, InvalidInput, NotFound
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
    """The trees of these files (paths relative to the root, POSIX separators).

    Raises:
        InvalidInput: a name a listing cannot hold (see ``entry_name_problem``), naming it.
    """
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
        data = _encoded(folder, listing)
        digest = digest_of(hasher().update(data))
        trees[digest] = data
        if folder:
            parent = folder.rpartition("/")[0]
            by_dir[parent].append([folder.rpartition("/")[2], "d", digest, size, files])
        else:
            root, total_size, total_files = digest, size, files
    return Manifest(root, trees, total_files, total_size)


def _encoded(folder: str, listing: list[list[Any]]) -> bytes:
    """The listing's bytes, once every name in it is one a checkout can write back."""
    where = f"{folder}/" if folder else ""
    bad = first_bad_entry_name([e[0] for e in listing])
    if bad is not None:
        raise InvalidInput(
            f"{where}{bad}: cannot be versioned: {entry_name_problem(bad)}; rename it"
        )
    try:
        return encode_tree(listing)
    except orjson.JSONEncodeError as exc:  # a name the file system gave as undecodable bytes
        bad = next(e[0] for e in listing if not _is_utf8(e[0]))
        raise InvalidInput(
            f"{where}{bad!r}: cannot be versioned: its name is not UTF-8; rename it"
        ) from exc


def _is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


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
    if (problem := _listing_problem(entries)) is not None:
        raise IntegrityError(f"object {digest} is not a data manifest: {problem}")
    return entries


def _listing_problem(entries: object) -> str | None:
    """What makes these entries unsafe to follow, or None: every consumer of a listing
    (checkout, pull, a server recording a version) may then trust its shape and write a
    file at ``folder/name`` knowing it stays inside ``folder``."""
    if type(entries) is not list:
        return "its entries are not a list"
    for entry in entries:
        if not _well_formed(entry):
            return f"malformed entry {str(entry)[:200]}"
    names = [e[0] for e in entries]
    if (bad := first_bad_entry_name(names)) is not None:
        return f"entry {bad!r}: {entry_name_problem(bad)}"
    if len(set(names)) != len(names):
        return "a name is listed twice"
    return None


def _well_formed(entry: Any) -> bool:
    """``[name, "f", digest, size, bundle, offset]`` or ``[name, "d", tree, bytes, files]``
    (a loop, not a schema library: a checkout checks every file's entry)."""
    if type(entry) is not list:
        return False
    if len(entry) == 6:
        _, kind, digest, size, bundle, offset = entry
        return (
            kind == "f" and type(digest) is str and type(bundle) is str
            and type(size) is int and type(offset) is int and size >= 0 and offset >= 0
        )  # fmt: skip
    if len(entry) == 5:
        _, kind, digest, size, files = entry
        return (
            kind == "d" and type(digest) is str
            and type(size) is int and type(files) is int and size >= 0 and files >= 0
        )  # fmt: skip
    return False


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


def check_new_version(new: NewDataVersion, read: Callable[[str], bytes]) -> None:
    """What a catalog others check out from verifies before recording ``new``: that its
    digest names a manifest held here whole, every listing of it safe to check out, and
    that it holds the files and bytes ``new`` claims.

    Raises:
        InvalidInput: naming the field that does not hold.
    """
    try:
        entries = list(walk(new.digest, read))
        for entry in entries:
            check_digest(entry.digest)
            if entry.bundle:
                check_digest(entry.bundle)
    except (IntegrityError, NotFound, InvalidInput) as exc:
        raise InvalidInput(
            f"digest {new.digest}: not a data manifest held here whole ({exc.message})"
        ) from exc
    found = (len(entries), sum(e.size for e in entries))
    if (new.files, new.bytes) != found:
        raise InvalidInput(
            f"files, bytes: the manifest holds {found[0]} files of {found[1]} bytes, "
            f"not {new.files} of {new.bytes}"
        )
    if new.kind == DataKind.FILE and [e.path.count("/") for e in entries] != [0]:
        raise InvalidInput("kind: 'file', but the manifest does not hold exactly one file")

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

A listing names its folders' listings by digest, so it may name one many times: identical
folders share a listing, and so may three small listings that stand for a billion files.
A walk is bounded all the same: a server recording a version reads each listing once
(``measure``), whatever they add up to; a walk of the files (``walk``) stops at the first
one past what its version claims, and every walk at ``MAX_ENTRIES``, ``MAX_PATH`` and
``MAX_LISTING_BYTES``, which ``build`` never makes a manifest past.
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
# What a version may hold, so that whatever walks one (a server recording it, a checkout)
# knows where it stops. A listing names its folders' listings by digest, and may name one
# many times (identical folders share a listing): a few small listings can stand for
# billions of files. Walks stop at these, and at the files and bytes a version claims.
MAX_ENTRIES = 50_000_000  # files and folders in one version
MAX_BYTES = 2**63 - 1  # bytes in one version: what its 64-bit field holds
MAX_PATH = 4096  # characters in a path inside a version (no longer one is written on Linux)
MAX_LISTING_BYTES = 128 << 20  # one folder's listing: some 700,000 files directly in it
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
        InvalidInput: a name a listing cannot hold (see ``entry_name_problem``), naming it;
            more than a version may hold (``MAX_ENTRIES``, ``MAX_LISTING_BYTES``): what a
            checkout would refuse to read is never made.
    """
    by_dir: dict[str, list[list[Any]]] = defaultdict(list)
    dirs: set[str] = {""}
    for entry in entries:
        parent, _, name = entry.path.rpartition("/")
        by_dir[parent].append([name, "f", entry.digest, entry.size, entry.bundle, entry.offset])
        while parent and parent not in dirs:  # every ancestor gets a listing
            dirs.add(parent)
            parent = parent.rpartition("/")[0]
    count = sum(map(len, by_dir.values()))  # files, before any folder is listed
    if count + len(dirs) - 1 > MAX_ENTRIES:
        raise InvalidInput(
            f"{count} files in {len(dirs) - 1} folders: more than a version may hold "
            f"({MAX_ENTRIES:,} files and folders); add them as several datasets"
        )
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
        data = encode_tree(listing)
    except orjson.JSONEncodeError as exc:  # a name the file system gave as undecodable bytes
        bad = next(e[0] for e in listing if not _is_utf8(e[0]))
        raise InvalidInput(
            f"{where}{bad!r}: cannot be versioned: its name is not UTF-8; rename it"
        ) from exc
    if len(data) > MAX_LISTING_BYTES:
        named = f"{folder}: " if folder else ""
        raise InvalidInput(
            f"{named}{len(listing)} files and folders directly in one folder make a listing "
            f"of {len(data)} bytes, over the {MAX_LISTING_BYTES} one may be; split it into "
            "subfolders"
        )
    return data


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
    IntegrityError: the object is not a tree of this format, or is larger than any listing
        may be (``MAX_LISTING_BYTES``: read whole, a listing is held in memory whole).
    """
    if len(data) > MAX_LISTING_BYTES:
        raise IntegrityError(_too_large(digest, len(data)))
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


def _too_large(digest: str, size: int) -> str:
    return f"object {digest} is {size} bytes or more: no listing is over {MAX_LISTING_BYTES}"


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


@dataclass(frozen=True, slots=True)
class Bound:
    """What a walk may find: the files and bytes a version claims. It stops at the first
    file past them, and at the first entry (file or folder) past ``MAX_ENTRIES``, so a
    listing that names one sub-listing many times cannot make it run for ever."""

    files: int = MAX_ENTRIES
    bytes: int = MAX_BYTES


NO_CLAIM = Bound()  # a walk of a manifest no version's claims come with (``cairn.lock``'s)


def walk(root: str, read: Callable[[str], bytes], bound: Bound = NO_CLAIM) -> Iterator[FileEntry]:
    """Every file of the manifest rooted at ``root``, in path order; ``read`` fetches a
    tree object by digest.

    Raises:
        IntegrityError: a listing is damaged, or the manifest holds more than ``bound``
            (raised at the first file past it), more than ``MAX_ENTRIES`` entries, or a
            folder whose path is longer than ``MAX_PATH``.
    """
    files, size, folders = 0, 0, 0
    pending = [(iter(decode_tree(read(root), root)), "")]
    # A stack, not recursion: folders may nest as deep as a path's length allows.
    while pending:
        entries, prefix = pending[-1]
        for entry in entries:
            path = prefix + entry[0]
            if entry[1] == "d":
                folders += 1
                _check_limits(files + folders, len(path), path)
                pending.append((iter(decode_tree(read(entry[2]), entry[2])), f"{path}/"))
                break
            files += 1
            size += entry[3]
            if files > bound.files or size > bound.bytes or files + folders > MAX_ENTRIES:
                raise IntegrityError(_past(bound, files, size, path))
            yield _entry(FileEntry, (path, entry[2], entry[3], entry[4], entry[5]))
        else:
            pending.pop()


def _check_limits(entries: int, deepest: int, where: str = "") -> None:
    """Raises:
    IntegrityError: past ``MAX_ENTRIES`` entries, or a folder's path past ``MAX_PATH``
        characters.
    """
    if entries > MAX_ENTRIES:
        raise IntegrityError(f"it holds more than {MAX_ENTRIES:,} files and folders")
    if deepest > MAX_PATH:
        at = f" (at {where[:100]}…)" if where else ""
        raise IntegrityError(f"its folders nest past a path of {MAX_PATH} characters{at}")


def _past(bound: Bound, files: int, size: int, path: str) -> str:
    if files <= bound.files and size <= bound.bytes:
        return f"it holds more than {MAX_ENTRIES:,} files and folders"
    return (
        f"it holds more than the {bound.files} files of {bound.bytes} bytes its version "
        f"claims (at {path})"
    )


@dataclass(frozen=True, slots=True)
class Totals:
    """What a manifest (or one folder of it) holds, nested listings counted each time
    they are named."""

    files: int
    bytes: int
    entries: int  # files and folders
    deepest: int  # characters in its longest folder path (0: no folders)


def measure(root: str, read: Callable[[str], bytes]) -> Totals:
    """What the manifest rooted at ``root`` holds, reading each listing once, however
    often it is named: identical folders share one listing, and a listing naming one
    sub-listing K times per level stands for K**depth files. The cost is the size of the
    listings, never what they add up to.

    Raises:
        IntegrityError: a listing is damaged; a folder's entry says other files or bytes
            than its listing holds; more than ``MAX_ENTRIES`` entries, or a folder whose
            path is longer than ``MAX_PATH``.
        InvalidInput: an entry's digest is not a digest.
    """
    known: dict[str, Totals] = {}
    opened: dict[str, list[list[Any]]] = {}  # read, waiting for the listings it names
    pending = [root]
    while pending:
        digest = pending[-1]
        if digest in known:
            pending.pop()
            continue
        if digest not in opened:
            opened[digest] = _checked_listing(digest, read)
        entries = opened[digest]
        unknown = [e[2] for e in entries if e[1] == "d" and e[2] not in known]
        if not unknown:
            known[digest] = _totals(digest, entries, known)
            del opened[digest]
            pending.pop()
        elif (loop := next((d for d in unknown if d in opened), None)) is not None:
            raise IntegrityError(f"listing {digest} names {loop}, a listing above it")
        pending.extend(unknown)
    return known[root]


def _checked_listing(digest: str, read: Callable[[str], bytes]) -> list[list[Any]]:
    """The listing, each file's digests checked (a listing is read once: not each time
    it is named)."""
    entries = decode_tree(read(digest), digest)
    for entry in entries:
        if entry[1] == "f":
            check_digest(entry[2])
            if entry[4]:
                check_digest(entry[4])
    return entries


def _totals(digest: str, entries: list[list[Any]], known: dict[str, Totals]) -> Totals:
    files, size, count, deepest = 0, 0, 0, 0
    for entry in entries:
        if entry[1] == "f":
            files, size, count = files + 1, size + entry[3], count + 1
            continue
        below = known[entry[2]]
        if (entry[3], entry[4]) != (below.bytes, below.files):
            raise IntegrityError(
                f"listing {digest}: folder {entry[0]!r} says it holds {entry[4]} files of "
                f"{entry[3]} bytes, its listing {below.files} of {below.bytes}"
            )
        files, size, count = files + below.files, size + below.bytes, count + 1 + below.entries
        deepest = max(deepest, len(entry[0]) + (below.deepest and 1 + below.deepest))
    _check_limits(count, deepest)
    return Totals(files, size, count, deepest)


def check_new_version(new: NewDataVersion, read: Callable[[str], bytes]) -> None:
    """What a catalog others check out from verifies before recording ``new``: that its
    digest names a manifest held here whole, every listing of it safe to check out, and
    that it holds the files and bytes ``new`` claims. Each listing is read once
    (``measure``): what this costs is bounded by the size of what the caller stored.

    Raises:
        InvalidInput: naming the field that does not hold.
    """
    if new.files > MAX_ENTRIES:
        raise InvalidInput(
            f"files: {new.files} is more than a version may hold ({MAX_ENTRIES:,} files and "
            "folders); split the data into several datasets"
        )
    try:
        found = measure(new.digest, read)
    except (IntegrityError, NotFound, InvalidInput) as exc:
        raise InvalidInput(
            f"digest {new.digest}: not a data manifest held here whole ({exc.message})"
        ) from exc
    if (new.files, new.bytes) != (found.files, found.bytes):
        raise InvalidInput(
            f"files, bytes: the manifest holds {found.files} files of {found.bytes} bytes, "
            f"not {new.files} of {new.bytes}"
        )
    if new.kind == DataKind.FILE and found.entries != 1:
        raise InvalidInput("kind: 'file', but the manifest does not hold exactly one file")

"""Write a version's files into a folder: from bundles (each read once, verified against
its digest) and from objects of their own (streamed, verified).

A file that exists is replaced atomically (written beside it, renamed over it), so it is
either as it was or as the version has it; a new file is created in place, and removed if
writing it fails.
"""

from __future__ import annotations

import errno
import os
from collections import defaultdict
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import TypeVar

from cairn.core.data import FileEntry
from cairn.core.ports import ArtifactStore
from cairn.data.manifest import MAX_LISTING_BYTES
from cairn.data.snapshot import MAX_BUNDLE_BYTES
from cairn.errors import IntegrityError, InvalidInput, NotFound
from cairn.localfs.atomic import write_atomically

_T = TypeVar("_T")


def read_object(artifacts: ArtifactStore, digest: str, limit: int, what: str) -> bytes:
    """A whole object, verified, held in memory: one that may be at most ``limit`` bytes
    (``what`` it is, for the message). Reading stops past it, so a store or a server
    cannot make Cairn hold more than that by naming a larger object.

    Raises:
        IntegrityError: the object is larger than ``limit``, or does not match its digest.
        NotFound: the store lacks it.
    """
    parts: list[bytes] = []
    size = 0
    with artifacts.open(digest) as chunks:
        for chunk in chunks:
            size += len(chunk)
            if size > limit:
                raise IntegrityError(
                    f"object {digest} is over {limit} bytes, more than {what} may be"
                )
            parts.append(chunk)
    return b"".join(parts)


def read_listing(artifacts: ArtifactStore, digest: str) -> bytes:
    """One listing of a version's manifest (see ``cairn.data.manifest``).

    Raises:
        IntegrityError: larger than any listing may be, or not matching its digest.
        NotFound: the store lacks it.
    """
    return read_object(artifacts, digest, MAX_LISTING_BYTES, "a listing")


def read_bundle(artifacts: ArtifactStore, digest: str) -> bytes:
    """One bundle of small files, read whole (see ``cairn.data.snapshot``).

    Raises:
        IntegrityError: larger than any bundle may be, or not matching its digest.
        NotFound: the store lacks it.
    """
    return read_object(artifacts, digest, MAX_BUNDLE_BYTES, "a bundle")


Linker = Callable[[FileEntry, str], "os.stat_result | None"]


def write_files(
    entries: Iterable[FileEntry],
    dest: Callable[[FileEntry], str],
    artifacts: ArtifactStore,
    what: str,
    advance: Callable[[int], None] | None = None,
    linker: Linker | None = None,
) -> list[tuple[FileEntry, str, os.stat_result]]:
    """Write each entry to ``dest(entry)``; what was written, where, and its ``stat``.

    ``linker`` is tried first for a file stored as an object of its own: it links the
    object to the target and answers the ``stat``, or None, and the file is copied.

    Raises:
        IntegrityError: an object's bytes do not match its digest (naming ``what``).
        NotFound: the store lacks an object (naming ``what``).
    """
    step = advance or (lambda _n: None)
    by_bundle: dict[str, list[FileEntry]] = defaultdict(list)
    for entry in entries:
        by_bundle[entry.bundle].append(entry)
    written: list[tuple[FileEntry, str, os.stat_result]] = []
    folders: set[str] = set()
    for bundle, members in by_bundle.items():
        if not bundle:
            for entry in members:
                target = dest(entry)
                linked = _guarded(partial(linker, entry, target), what, entry) if linker else None
                if linked is None:
                    _guarded(partial(artifacts.get_file, entry.digest, Path(target)), what, entry)
                    linked = os.stat(target)
                written.append((entry, target, linked))
                step(entry.size)
            continue
        data = _guarded(partial(read_bundle, artifacts, bundle), what, members[0])
        view = memoryview(data)
        for entry in members:
            target = dest(entry)
            chunk = view[entry.offset : entry.offset + entry.size]
            if len(chunk) != entry.size:
                raise IntegrityError(
                    f"{what}: bundle {bundle} is shorter than its manifest says "
                    f"({entry.path} at {entry.offset}+{entry.size})"
                )
            folder = os.path.dirname(target)
            if folder not in folders:
                os.makedirs(folder, exist_ok=True)
                folders.add(folder)
            written.append((entry, target, _write(target, chunk)))
            step(entry.size)
    return written


def _write(target: str, data: memoryview) -> os.stat_result:
    """A new file is created in place (one file system operation, not two: creating files
    is what a checkout of many small ones spends its time on) and removed again if writing
    it fails; an existing file is replaced atomically."""
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        write_atomically([bytes(data)], Path(target))
        return os.stat(target)
    try:
        if os.write(fd, data) != len(data):  # a regular file takes all of it, or is full
            raise OSError(errno.ENOSPC, "No space left on device", target)
        return os.fstat(fd)
    except BaseException:
        os.close(fd)
        fd = -1
        os.unlink(target)
        raise
    finally:
        if fd >= 0:
            os.close(fd)


def _guarded(load: Callable[[], _T], what: str, entry: FileEntry) -> _T:
    try:
        return load()
    except InvalidInput as exc:  # the manifest names the bytes by something not a digest
        raise IntegrityError(
            f"{what}: its manifest is damaged at {entry.path} ({exc.message})"
        ) from exc
    except IntegrityError as exc:
        raise IntegrityError(
            f"{what}: the stored bytes of {entry.path} are damaged ({exc.message})"
        ) from exc
    except NotFound as exc:
        raise NotFound(
            f"{what}: the store lacks the bytes of {entry.path} ({exc.message})"
        ) from exc

"""Write a version's files into a folder: from bundles (each read once, verified against
its digest) and from objects of their own (streamed, verified).

Each file is written beside its place and renamed into it, so an interrupted checkout
leaves every file either as it was or as the version has it.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import TypeVar

from cairn.core.data import FileEntry
from cairn.core.ports import ArtifactStore
from cairn.errors import IntegrityError, NotFound
from cairn.localfs.atomic import write_atomically

_T = TypeVar("_T")


def read_object(artifacts: ArtifactStore, digest: str) -> bytes:
    """A whole object, verified (small ones: manifests and bundles)."""
    with artifacts.open(digest) as chunks:
        return b"".join(chunks)


def write_files(
    entries: Iterable[FileEntry],
    dest: Callable[[FileEntry], Path],
    artifacts: ArtifactStore,
    what: str,
    advance: Callable[[int], None] | None = None,
) -> None:
    """Write each entry to ``dest(entry)``.

    Raises:
        IntegrityError: an object's bytes do not match its digest (naming ``what``).
        NotFound: the store lacks an object (naming ``what``).
    """
    step = advance or (lambda _n: None)
    by_bundle: dict[str, list[FileEntry]] = defaultdict(list)
    for entry in entries:
        by_bundle[entry.bundle].append(entry)
    for bundle, members in by_bundle.items():
        if not bundle:
            for entry in members:
                _guarded(partial(artifacts.get_file, entry.digest, dest(entry)), what, entry)
                step(entry.size)
            continue
        data = _guarded(partial(read_object, artifacts, bundle), what, members[0])
        view = memoryview(data)
        for entry in members:
            target = dest(entry)
            chunk = view[entry.offset : entry.offset + entry.size]
            if len(chunk) != entry.size:
                raise IntegrityError(
                    f"{what}: bundle {bundle} is shorter than its manifest says "
                    f"({entry.path} at {entry.offset}+{entry.size})"
                )
            _write(target, chunk)
            step(entry.size)


def _write(target: Path, data: memoryview) -> None:
    if target.exists() or target.is_symlink():
        write_atomically([bytes(data)], target)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.cairn-part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        if os.write(fd, data) != len(data):  # a regular file takes all of it, or is full
            raise OSError(28, "No space left on device", str(target))
    finally:
        os.close(fd)
    os.replace(tmp, target)


def _guarded(load: Callable[[], _T], what: str, entry: FileEntry) -> _T:
    try:
        return load()
    except IntegrityError as exc:
        raise IntegrityError(
            f"{what}: the stored bytes of {entry.path} are damaged ({exc.message})"
        ) from exc
    except NotFound as exc:
        raise NotFound(
            f"{what}: the store lacks the bytes of {entry.path} ({exc.message})"
        ) from exc

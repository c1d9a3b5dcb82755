"""Content-addressed objects and the manifest that names a run's artifacts."""

from __future__ import annotations

import bisect
import posixpath
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cairn.core.limits import check_int64
from cairn.errors import InvalidInput

HASH_NAME = "blake3"
MAX_PATH = 1024  # what the manifest's path column holds
_DIGEST = re.compile(r"^(?P<algo>[a-z0-9]+):(?P<hex>[0-9a-f]{64})$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """An object in a content-addressed store: ``digest`` is ``"blake3:<64 hex>"``."""

    digest: str
    size: int


@dataclass(frozen=True, slots=True)
class ArtifactEntry:
    """One file of a run's artifact manifest, or a folder when listing."""

    path: str
    digest: str | None  # None for a folder
    size: int

    @property
    def is_dir(self) -> bool:
        return self.digest is None


def check_digest(digest: str) -> str:
    """Raises:
    InvalidInput: ``digest`` is not ``<algorithm>:<64 hex characters>``.
    """
    if not isinstance(digest, str) or not _DIGEST.match(digest):
        raise InvalidInput(f"digest {digest!r}: expected '{HASH_NAME}:' and 64 hex characters")
    return digest


@dataclass(frozen=True, slots=True)
class StoredObject:
    """An object as a store lists it, for garbage collection."""

    digest: str
    size: int
    modified_at: float  # seconds since the epoch; recent objects may belong to an add in progress


def object_key(digest: str) -> str:
    """Where an object lives below a store's root: the hash name is part of the path."""
    algo, _, hexdigest = check_digest(digest).partition(":")
    return f"{algo}/{hexdigest[:2]}/{hexdigest[2:]}"


def check_artifact_path(path: object, field: str) -> str:
    """A path as a run's manifest records it: clean, relative, and the same on every
    system (a downloaded artifact lands where its path says, below the folder asked for).

    Raises:
        InvalidInput: ``path`` is not a non-empty string of at most ``MAX_PATH`` characters
            made of ``/``-separated names, none empty, ``.`` or ``..``, without ``\\`` or
            control characters.
    """
    if not isinstance(path, str):
        raise InvalidInput(f"{field}: expected a string, got {type(path).__name__}")
    if not path:
        raise InvalidInput(f"{field}: expected a file's path within the run, got ''")
    if len(path) > MAX_PATH:
        raise InvalidInput(f"{field}: longer than {MAX_PATH} characters ({len(path)})")
    if _CONTROL.search(path) or "\\" in path:
        raise InvalidInput(f"{field} {path!r}: contains '\\' or a control character")
    if any(part in ("", ".", "..") for part in path.split("/")):
        raise InvalidInput(
            f"{field} {path!r}: expected names separated by single '/', without '.' or "
            "'..' and with no '/' at either end (e.g. 'reports/roc.png')"
        )
    return path


def check_entries(entries: Sequence[ArtifactEntry]) -> list[ArtifactEntry]:
    """A manifest as recorded: every path clean, every digest well formed, every size a
    byte count, and no path both a file and a folder (a file ``a`` would hide ``a/b``).

    Raises:
        InvalidInput: naming the entry and its field (``entries[2].path``).
    """
    for index, entry in enumerate(entries):
        field = f"entries[{index}]"
        check_artifact_path(entry.path, f"{field}.path")
        try:
            check_digest(entry.digest)  # type: ignore[arg-type]  # checked, whatever it is
        except InvalidInput as exc:
            raise InvalidInput(f"{field}.{exc.message}") from None
        if check_int64(entry.size, f"{field}.size") < 0:
            raise InvalidInput(f"{field}.size: expected a byte count (0 or more)")
    paths = [entry.path for entry in entries]
    if clash := first_folder_clash(paths, paths):
        raise InvalidInput(folder_clash_message(*clash))
    return list(entries)


def first_folder_clash(files: Iterable[str], others: Iterable[str]) -> tuple[str, str] | None:
    """A file of ``files`` that is a folder of a path in ``others`` (``a`` and ``a/b``),
    with that path; None when there is none."""
    ordered = sorted(set(others))
    for file in files:
        below = f"{file}/"
        at = bisect.bisect_left(ordered, below)
        if at < len(ordered) and ordered[at].startswith(below):
            return file, ordered[at]
    return None


def folder_clash_message(file: str, inside: str) -> str:
    return (
        f"artifact {inside!r}: {file!r} is a file of the run's artifacts, so it cannot be a "
        "folder too; log the file under another path"
    )


def clean_artifact_path(path: str, field: str = "artifact_path") -> str:
    """Normalise a run-relative path; refuse anything that would escape the run.

    Raises:
        InvalidInput: the path is absolute or climbs out with ``..``.
    """
    if not isinstance(path, str):
        raise InvalidInput(f"{field}: expected a string, got {type(path).__name__}")
    text = path.replace("\\", "/").strip()
    if text.startswith("/") or re.match(r"^[A-Za-z]:", text):
        raise InvalidInput(f"{field} {path!r}: must be relative to the run, not absolute")
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise InvalidInput(f"{field} {path!r}: must not contain '..' (it would leave the run)")
    if any(ord(c) < 32 for c in text):
        raise InvalidInput(f"{field} {path!r}: contains control characters")
    return posixpath.join(*parts) if parts else ""


def list_children(entries: Iterable[ArtifactEntry], path: str) -> list[ArtifactEntry]:
    """What ``ls path`` shows: the files directly under it, and its sub-folders with sizes."""
    prefix = f"{path}/" if path else ""
    files: list[ArtifactEntry] = []
    folders: dict[str, int] = {}
    for entry in entries:
        if not entry.path.startswith(prefix):
            continue
        head, sep, _ = entry.path[len(prefix) :].partition("/")
        if sep:
            folder = prefix + head
            folders[folder] = folders.get(folder, 0) + entry.size
        else:
            files.append(entry)
    listed = files + [ArtifactEntry(p, None, size) for p, size in folders.items()]
    return sorted(listed, key=lambda e: e.path)

"""Content-addressed objects and the manifest that names a run's artifacts."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass

from cairn.errors import InvalidInput

HASH_NAME = "blake3"
_DIGEST = re.compile(r"^(?P<algo>[a-z0-9]+):(?P<hex>[0-9a-f]{64})$")


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

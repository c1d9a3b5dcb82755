"""Datasets and their versions: the shapes, and the references users type.

A dataset is a name (``customers``) in a project; each ``cairn data add`` that finds
different bytes makes a new version, numbered from 1. A version is named by its manifest:
the digest of the root of a tree of sorted, content-addressed directory listings (see
``cairn.data.manifest``), so two versions with the same files have the same digest.

References: ``customers@4`` (version 4), ``customers@latest`` or ``customers`` (the
newest), ``customers@3f9a2c1b`` (a prefix of the manifest's digest, 8 or more hex digits).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple

from cairn.errors import InvalidInput

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_HEX = re.compile(r"^[0-9a-f]{8,64}$")
LATEST = "latest"
PROJECT_FOLDER = "."  # a version's path when it was the whole project folder
# What joining a name to a folder must never do: climb out of it, name the folder itself,
# or cross into another (``\\`` separates folders on Windows; NUL ends a name in C).
_NOT_NAMES = frozenset({"", ".", ".."})
_SEPARATORS = ("/", "\\", "\0")
_DRIVE = re.compile(r"^[A-Za-z]:")  # C:/data is absolute on Windows


class DataKind(StrEnum):
    FILE = "file"  # one file, tracked at a path
    DIRECTORY = "directory"  # a tree of files below a path


class LinkMode(StrEnum):
    """How a file and a stored object share bytes (``cairn.localfs.links``)."""

    COPY = "copy"  # each has its own
    REFLINK = "reflink"  # a copy-on-write clone, where the file system has them
    HARDLINK = "hardlink"  # one file, made read-only


@dataclass(frozen=True, slots=True)
class DataRef:
    """What a reference names: a version number, a digest prefix, or the newest."""

    name: str
    version: int | None = None
    digest_prefix: str | None = None

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}@{self.version}"
        if self.digest_prefix is not None:
            return f"{self.name}@{self.digest_prefix}"
        return f"{self.name}@{LATEST}"


@dataclass(frozen=True, slots=True)
class NewDataVersion:
    """What ``cairn data add`` found, to be recorded as the next version of ``name``."""

    name: str
    digest: str  # the root tree of the manifest
    kind: DataKind
    path: str
    files: int
    bytes: int
    message: str = ""
    project: str = "default"  # for a new dataset; an existing one keeps its project
    profile: str = ""  # the digest of its tables' profile object, if it has tables
    # Every object it is made of (listings, bundles, files): who may read the dataset may
    # read these through a server.
    objects: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DataVersion:
    dataset: str
    version: int
    project: str
    digest: str  # the root tree of the manifest, "blake3:<hex>"
    kind: DataKind
    path: str  # where it was added from, relative to the workspace, POSIX separators
    files: int
    bytes: int
    message: str
    created_by: str
    created_at: int  # milliseconds since the epoch
    profile: str = ""  # the digest of its tables' profile object ("": no tables)

    @property
    def ref(self) -> str:
        return f"{self.dataset}@{self.version}"


class FileEntry(NamedTuple):
    """One file of a version: where its bytes live in the object store.

    A file of its own is the object ``digest`` (``bundle`` is empty). A small file lives
    inside a bundle, an object holding many small files back to back, at ``offset``:
    storing 100,000 files of 1 KiB as a few bundles instead of 100,000 objects is what
    keeps adding, pushing and checking out many small files fast.
    """

    path: str  # relative to the version's root, POSIX separators
    digest: str
    size: int
    bundle: str = ""
    offset: int = 0


def check_dataset_name(name: str) -> str:
    """Raises:
    InvalidInput: naming what a dataset name may hold.
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInput(
            f"dataset name {name!r}: expected 1 to 128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def parse_data_ref(text: str) -> DataRef:
    """``customers``, ``customers@latest``, ``customers@4`` or ``customers@<hex prefix>``.

    Raises:
        InvalidInput: the reference has none of those forms.
    """
    if not isinstance(text, str):
        raise InvalidInput(f"data reference: expected a string such as 'customers@2', got {text!r}")
    name, at, selector = text.partition("@")
    check_dataset_name(name)
    if not at or selector == LATEST:
        return DataRef(name)
    if selector.isdigit() and len(selector) < 8 and int(selector) >= 1:
        return DataRef(name, version=int(selector))
    if _HEX.match(selector):
        return DataRef(name, digest_prefix=selector)
    raise InvalidInput(
        f"data reference {text!r}: after '@' expected a version number (such as "
        f"{name}@2), 'latest', or 8 or more hex digits of a manifest digest"
    )


def entry_name_problem(name: object) -> str | None:
    """Why ``name`` cannot be an entry of a version's listing, or None if it can: a name is
    one non-empty path component, so that a file written at ``folder/name`` is inside
    ``folder`` on every operating system."""
    if not isinstance(name, str):
        return f"expected a file or folder name, got {type(name).__name__}"
    if name in _NOT_NAMES:
        return "'..' leads out of its folder" if name == ".." else f"{name!r} is not a name"
    if any(separator in name for separator in _SEPARATORS):
        return "a name holds no '/', '\\' or NUL"
    return None


def first_bad_entry_name(names: list[Any]) -> Any | None:
    """The first of ``names`` that ``entry_name_problem`` refuses, or None."""
    if _all_names(names):
        return None
    return next((n for n in names if entry_name_problem(n) is not None), None)


def _all_names(names: list[Any]) -> bool:
    """``entry_name_problem`` of every name at once, by a few scans in C: listings hold
    thousands of names, and a checkout reads every listing of its version."""
    try:
        joined = "/".join(names)
    except TypeError:  # not all strings
        return False
    return (
        joined.count("/") == len(names) - 1
        and "\\" not in joined
        and "\0" not in joined
        and _NOT_NAMES.isdisjoint(names)
    )


def version_path_problem(path: object, kind: DataKind) -> str | None:
    """Why ``path`` cannot be where a version of ``kind`` lives, or None if it can: a
    path relative to the project folder, with POSIX separators, inside it (``.``: the
    folder itself, for a directory)."""
    if not isinstance(path, str):
        return f"expected a path, got {type(path).__name__}"
    if path == PROJECT_FOLDER and kind == DataKind.DIRECTORY:
        return None
    if path.startswith("/") or _DRIVE.match(path):
        problem: str | None = "an absolute path"
    else:
        problem = next(filter(None, map(entry_name_problem, path.split("/"))), None)
    if problem is None:
        return None
    return f"{problem}; expected a path inside the project folder, such as data/customers.csv"


def recorded_path_problem(path: object, kind: DataKind) -> str | None:
    """Why ``path`` cannot be recorded as where a version lives, or None if it can: inside
    the project folder (``version_path_problem``), and through no hidden folder or file.

    A checkout writes a version where it was recorded, for whoever checks it out, and
    hidden folders hold what tools run: a virtual environment (``.venv``: a ``.pth`` file
    runs when Python starts), a repository's hooks (``.git``), CI workflows (``.github``).
    Names inside a version's listings may start with "." (a dataset of dotfiles is fine).
    """
    problem = version_path_problem(path, kind)
    if problem is not None or not isinstance(path, str) or path == PROJECT_FOLDER:
        return problem
    hidden = next((part for part in path.split("/") if part.startswith(".")), None)
    if hidden is None:
        return None
    return (
        f"{hidden!r} is hidden (it starts with '.'): a version is recorded at no hidden "
        "folder or file, such as .git or .venv, whose files tools run; expected a path "
        "such as data/customers.csv"
    )


def check_version_path(path: str, kind: DataKind) -> str:
    """Raises:
    InvalidInput: ``path`` is not one a version may be recorded at (naming the field).
    """
    if (problem := recorded_path_problem(path, kind)) is not None:
        raise InvalidInput(f"path {path!r}: {problem}")
    return path


def check_same_place(name: str, lives_at: str, path: str) -> None:
    """A dataset lives at one path (``lives_at``: its newest version's), so that a checkout
    of its newest version writes where every version before it did: a contributor cannot
    send a teammate's ``cairn data checkout customers`` somewhere new.

    Raises:
        InvalidInput: ``path`` is another path (naming the field).
    """
    if path != lives_at:
        raise InvalidInput(
            f"path {path!r}: dataset {name!r} lives at {lives_at!r}; add this one under "
            f"a new name (--name), or from {lives_at}"
        )

"""The environment a step ran in: Python and every installed distribution's version,
as one digest (part of each cache key) and as the list ``reproduce`` compares."""

from __future__ import annotations

import contextlib
import functools
import os
import platform
import site
import sys
from pathlib import Path
from typing import Any

import orjson

from cairn.localfs.atomic import write_atomically
from cairn.localfs.digest import digest_of, hasher

_cache_folder: Path | None = None


def remember_in(folder: Path) -> None:
    """Keep the listing in ``folder`` between processes: reading every distribution's
    metadata costs about 0.2 s, a large part of a fully cached pipeline run."""
    global _cache_folder
    _cache_folder = folder


@functools.cache
def installed() -> dict[str, str]:
    """``{distribution: version}`` of this interpreter, with Python itself.

    Read from the package folders once per process, or from the remembered listing while
    none of those folders changed (installing or removing a package changes its folder).
    """
    folders = package_folders()
    stamp = orjson.dumps([[f, _mtime(f)] for f in folders] + [sys.executable])
    remembered = _remembered(stamp)
    if remembered is not None:
        return remembered
    from importlib import metadata  # only when the remembered listing is stale

    found = {"python": platform.python_version()}
    for distribution in metadata.distributions(path=folders):
        name, version = _name_and_version(distribution)
        if name and version:
            found[name.lower().replace("_", "-")] = version
    listing = dict(sorted(found.items()))
    if _cache_folder is not None:
        with contextlib.suppress(OSError):
            document = orjson.dumps({"stamp": stamp.decode(), "installed": listing})
            write_atomically([document], _cache_folder / "environment.json")
    return listing


def package_folders() -> list[str]:
    """The folders whose distributions' versions the environment's digest holds."""
    # The interpreter's own package folders, not all of sys.path: a library that adds its
    # vendored copies to sys.path once imported (Ray does) must not change the answer.
    return [*site.getsitepackages(), site.getusersitepackages()]


def _name_and_version(distribution: Any) -> tuple[str, str]:
    """The ``Name`` and ``Version`` headers, read off the top of the metadata file: what
    ``distribution.name`` gives, without parsing the whole file as an e-mail message
    (ten times slower over a few hundred distributions)."""
    text = distribution.read_text("METADATA") or distribution.read_text("PKG-INFO") or ""
    found = {"Name": "", "Version": ""}
    for line in text.splitlines():
        if not line:
            break  # the headers end at the first empty line
        key, _, value = line.partition(": ")
        if key in found and not found[key]:
            found[key] = value.strip()
    return found["Name"], found["Version"]


def _remembered(stamp: bytes) -> dict[str, str] | None:
    if _cache_folder is None:
        return None
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        document = orjson.loads((_cache_folder / "environment.json").read_bytes())
        if document["stamp"] == stamp.decode():
            return dict(document["installed"])
    return None


def _mtime(folder: str) -> int:
    try:
        return os.stat(folder).st_mtime_ns
    except OSError:
        return 0


@functools.cache
def environment_digest() -> str:
    state = hasher()
    for name, version in installed().items():
        state.update(f"{name}=={version}\n".encode())
    return digest_of(state)

"""Whose code a module is, for the cache key: a version in the environment's digest covers
it, or the code fingerprint must follow it.

Covered by a version: a module whose file lies in one of the interpreter's package folders
(the ones whose distributions the environment's digest lists), in the standard library
(Python's version), or built into the interpreter; and Cairn's own code (its version).
Everything else is code that can change while no version does — the project's modules, a
folder beside the project on ``sys.path``, an editable install, a library on
``PYTHONPATH`` from another environment — and is followed like the project's. Where the
module lies relative to the project folder does not matter: a version covers it or not.
"""

from __future__ import annotations

import functools
import os
import sys
import types
from collections.abc import Iterable
from importlib.machinery import ModuleSpec
from pathlib import Path

from cairn.pipelines.environment import package_folders


def followed_module(module: types.ModuleType) -> bool:
    """Whether the fingerprint follows ``module``'s code (no version covers it)."""
    file = getattr(module, "__file__", None)
    return _followed(module.__name__, file, getattr(module, "__path__", None) or ())


def followed_spec(spec: ModuleSpec) -> bool:
    """The same for a module found but not imported."""
    file = spec.origin if spec.has_location else None
    return _followed(spec.name, file, spec.submodule_search_locations or ())


def _followed(name: str, file: str | None, folders: Iterable[str]) -> bool:
    if name == "cairn" or name.startswith("cairn."):
        return False  # Cairn's own code: its version is in the environment's digest
    places = [file] if file else list(folders)  # a namespace package has only folders
    if not places:
        return name == "__main__"  # an interactive session (a notebook); else built in
    return not all(_versioned(place) for place in places)


@functools.lru_cache(maxsize=4096)
def _versioned(place: str) -> bool:
    path = Path(place).resolve()
    return any(path.is_relative_to(folder) for folder in _versioned_folders())


@functools.cache
def _versioned_folders() -> tuple[Path, ...]:
    # The standard library, and its compiled modules (lib-dynload) where they lie apart:
    # sysconfig's "stdlib" and "platstdlib" on POSIX, written out (sysconfig's own
    # answer costs a millisecond or more, on every run).
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    compiled = os.path.join(sys.base_exec_prefix, sys.platlibdir, version)
    standard = [os.path.dirname(os.__file__), compiled]
    return tuple(Path(folder).resolve() for folder in [*package_folders(), *standard])

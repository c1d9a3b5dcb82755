"""What a worker process (:mod:`cairn.releases.sandbox`) may read, chosen by the process
that starts it, which knows where its installation keeps what a model must never read.

A worker reads a few system files (shared libraries, time zones, CPU counts), Python's
own folders, and the folders it imports from: the interpreter's standard library and
site-packages, the folders their ``.pth`` files name (packages installed in place with
``pip install -e``), the folder the ``cairn`` package is imported from, and the folders
Cairn's dependencies (the model libraries of its extras too) are installed in. Never the
caller's ``sys.path`` as it stands: its working directory, its script's folder (``python
project/release.py``) and ``PYTHONPATH`` may be a project holding the store, its database
and its keys.

Landlock allows a folder with everything beneath it: a folder that holds one of the
*private* paths the caller names (the Cairn home, the database file, the audit key, the
project folder …) is left out, with a warning saying which and why.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import site
import sys
import sysconfig
from collections.abc import Iterable, Iterator, Sequence
from importlib import metadata
from pathlib import Path

_log = logging.getLogger(__name__)
# Read-only, beside Python's own folders: what shared libraries, the standard library and
# numerical libraries read at run time. No user's files, no /proc of other processes
# (``/proc/self`` is the worker's own: never resolved here, in the process that starts it).
SYSTEM = ("/usr", "/lib", "/lib32", "/lib64", "/bin", "/sbin", "/etc/ld.so.cache",
          "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives", "/etc/localtime",
          "/etc/timezone", "/etc/passwd", "/etc/group", "/etc/nsswitch.conf", "/etc/ssl/certs",
          "/etc/mime.types", "/proc/self", "/proc/cpuinfo", "/proc/meminfo", "/proc/stat",
          "/sys/devices/system/cpu", "/sys/fs/cgroup", "/dev/urandom", "/dev/random",
          "/dev/zero")  # fmt: skip
_INSTALLED = ("stdlib", "platstdlib", "purelib", "platlib")  # sysconfig's names
_DISTRIBUTION = "cairn-mlops"


def readable_paths(private: Sequence[Path], imports: Sequence[Path]) -> list[Path]:
    """Everything a worker may read: the system files it needs, Python's folders and the
    folders it imports from (:func:`import_folders`); none that holds one of
    ``private``."""
    python = (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
              os.path.dirname(os.path.realpath(sys.executable)))  # fmt: skip
    return [*_without(private, map(Path, (*SYSTEM, *python))), *imports]


def import_folders(private: Sequence[Path]) -> list[Path]:
    """The folders a worker imports from (its ``PYTHONPATH``): the interpreter's, Cairn's
    and its dependencies' (see the module's docstring); none that holds one of
    ``private``."""
    installed = [Path(p) for name, p in sysconfig.get_paths().items() if name in _INSTALLED]
    sites = [*installed, *map(Path, site.getsitepackages())]
    in_place = [folder for s in sites for folder in _named_by_pth(s)]
    cairn = Path(__file__).resolve().parents[2]  # the folder holding the cairn package
    found = [*sites, *in_place, cairn, *_dependency_folders()]
    return _without(private, found)


def holds(folder: Path, path: Path) -> bool:
    """Whether ``path`` is ``folder`` or beneath it, links resolved."""
    folder, path = Path(os.path.realpath(folder)), Path(os.path.realpath(path))
    return folder == path or folder in path.parents


def _without(private: Sequence[Path], paths: Iterable[Path]) -> list[Path]:
    kept: list[Path] = []
    for path in dict.fromkeys(paths):  # in order, once each
        held = next((p for p in private if holds(path, p)), None)
        if held is None:
            kept.append(path)
        else:
            _log.warning("a worker process may not read %s: it holds %s", path, held)
    return kept


def _named_by_pth(folder: Path) -> Iterator[Path]:
    """The folders the ``.pth`` files of a site folder add to the import path (as the
    ``site`` module reads them: a line that is not a comment nor an ``import``)."""
    for pth in sorted(folder.glob("*.pth")):
        with contextlib.suppress(OSError, UnicodeDecodeError):
            for line in pth.read_text(encoding="utf-8").splitlines():
                if line.strip() and not line.startswith(("#", "import ", "import\t")):
                    yield folder / line.rstrip()


def _dependency_folders() -> Iterator[Path]:
    """Where each installed requirement of Cairn (its extras' too) is installed."""
    with contextlib.suppress(metadata.PackageNotFoundError):
        for requirement in metadata.requires(_DISTRIBUTION) or ():
            name = re.split(r"[\s;\[<>=!~(]", requirement, maxsplit=1)[0]
            with contextlib.suppress(metadata.PackageNotFoundError):
                yield Path(str(metadata.distribution(name).locate_file("")))

"""The physical floors of data work on this machine: what reading, copying, listing,
creating or linking the same files costs, with nothing else done.

Each floor is timed on its own copy of the data, in the same rounds as the tools, after the
same control of the page cache (benchmarks/_method.py), so a tool's figure divided by its
floor says how far it is from what the disk allows. The floors run in Python, like both
tools; a C program lists a little faster (``find``: about 0.75× of ``scandir`` here).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from _method import files_under

READ_AHEAD = 256  # files asked for ahead of the one being read, as a fast reader does
CHUNK = 16 << 20


def _timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def read(root: Path) -> float:
    """List ``root`` and read every byte of every file, keeping ``READ_AHEAD`` files in
    flight (``POSIX_FADV_WILLNEED``): reading many small files one after the other waits
    on the disk for each, which no fast tool does."""
    return _timed(lambda: _read_all(list(files_under(root))))


def _read_all(paths: list[str]) -> None:
    fds = [os.open(path, os.O_RDONLY) for path in paths[:READ_AHEAD]]
    for fd in fds:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
    for index in range(len(paths)):
        ahead = index + READ_AHEAD
        if ahead < len(paths):
            fds.append(os.open(paths[ahead], os.O_RDONLY))
            os.posix_fadvise(fds[-1], 0, 0, os.POSIX_FADV_WILLNEED)
        fd = fds[index]
        while os.read(fd, CHUNK):
            pass
        os.close(fd)


def stat(root: Path) -> float:
    """``scandir`` and ``stat`` of every file and folder below ``root``."""

    def walk() -> None:
        stack = [str(root)]
        while stack:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    entry.stat(follow_symlinks=False)
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)

    return _timed(walk)


def copy(source: Path, target: Path) -> float:
    """``cp -r`` of ``source`` to ``target`` (which must not exist): read and write."""
    return _timed(lambda: subprocess.run(["cp", "-r", str(source), str(target)], check=True))


def create(source: Path, target: Path) -> float:
    """Create files with the same names, sizes and bytes as ``source``'s in the fresh
    folder ``target``; the bytes are read beforehand, so only the creation is timed."""
    layout = [(Path(p).relative_to(source), Path(p).read_bytes()) for p in files_under(source)]
    return _timed(lambda: _write_all(target, layout))


def _write_all(target: Path, layout: list[tuple[Path, bytes]]) -> None:
    made: set[Path] = set()
    for relative, data in layout:
        path = target / relative
        if path.parent not in made:
            path.parent.mkdir(parents=True, exist_ok=True)
            made.add(path.parent)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)


def start() -> float:
    """Starting the Python interpreter both tools run on, importing nothing: the part of
    any command line's time that no work inside it can remove."""
    return _timed(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True))


def link(source: Path, target: Path) -> float:
    """A hard link of the file ``source`` at ``target``, in a fresh folder."""
    target.parent.mkdir(parents=True, exist_ok=True)
    return _timed(lambda: os.link(source, target))

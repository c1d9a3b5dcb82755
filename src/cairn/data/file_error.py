"""What a failed file operation means to the person who ran the command: one line naming
the file or folder and what to do about it.

Reading and writing a working copy can fail in as many ways as a file system has (a file
no one may read, a folder no one may write, a file where a folder goes, a path longer than
the system allows, a full disk). They are translated once, where a data command returns
to its caller (``translated``), rather than wherever a file happens to be opened.
"""

from __future__ import annotations

import errno
import functools
import os
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from cairn.errors import CairnError, InvalidState
from cairn.localfs.atomic import TEMPORARY_PREFIX

_P = ParamSpec("_P")
_R = TypeVar("_R")

_SHOWN = 80  # characters shown of each end of a path too long to show whole

_WHAT_TO_DO = {
    errno.EACCES: "permission denied; give this account access to it and its folder "
    "(`ls -ld` shows who may)",
    errno.EPERM: "not permitted (is it immutable? `lsattr` shows it); make it changeable "
    "and try again",
    errno.ENAMETOOLONG: "the path is longer than the file system allows (255 bytes a name, "
    "4,096 a path); use a shorter one",
    errno.ENOSPC: "no space left on its device; make room and try again",
    errno.EDQUOT: "this account's disk quota is used up; make room and try again",
    errno.EROFS: "on a read-only file system",
    errno.EISDIR: "a folder where a file goes; move it away and try again",
    errno.ELOOP: "a symbolic link loop",
}
_NOT_A_FOLDER = "a file where a folder goes; move it away (or check out elsewhere, with --to)"


def translated(method: Callable[_P, _R]) -> Callable[_P, _R]:
    """``method``, raising an ``InvalidState`` for the ``OSError`` it meets (Cairn's own
    errors pass: some are ``OSError`` too, as ``PermissionDenied`` is)."""

    @functools.wraps(method)
    def run(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return method(*args, **kwargs)
        except CairnError:
            raise
        except OSError as exc:
            raise InvalidState(described(exc)) from exc

    return run


def described(exc: OSError, path: str | None = None) -> str:
    """One line: the path ``exc`` is about (or ``path``), what happened, what to do."""
    named = path or _named(exc)
    if exc.errno in (errno.ENOTDIR, errno.EEXIST) and (blocking := _blocking(named)):
        return f"{shown(blocking)}: {_NOT_A_FOLDER}"
    if exc.errno == errno.ENOENT:
        if os.path.islink(named):
            return f"{shown(named)}: a symbolic link to something that does not exist"
        return f"{shown(named)}: no such file or directory"
    what = _WHAT_TO_DO.get(exc.errno or 0) or f"cannot use it ({exc.strerror or exc})"
    return f"{shown(named)}: {what}"


def shown(path: str) -> str:
    """``path``, or its two ends if it is too long to read in one line."""
    if len(path) <= 2 * _SHOWN + 20:
        return path
    return f"{path[:_SHOWN]}…{path[-_SHOWN:]} ({len(path):,} characters)"


def _named(exc: OSError) -> str:
    """The path the user knows: the target of a rename, the folder of a temporary file."""
    for name in (exc.filename2, exc.filename):
        if name is None:
            continue
        name = os.fsdecode(name)
        if not os.path.basename(name).startswith(TEMPORARY_PREFIX):
            return name
        return os.path.dirname(name)  # Cairn's temporary file stands for its folder
    return "a file"


def _blocking(path: str) -> str | None:
    """The file that stands where ``path`` or a folder on the way to it should be a
    folder, if there is one."""
    head = path
    while head != os.path.dirname(head):
        if os.path.lexists(head):
            return None if os.path.isdir(head) else head
        head = os.path.dirname(head)
    return None

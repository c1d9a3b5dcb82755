"""The C library, for the Linux calls Python's ``os`` module does not offer (on 3.11):
``prctl``, ``unshare``, ``capset`` and raw system calls, each failure as ``OSError``."""

from __future__ import annotations

import ctypes
import functools
import os


@functools.cache
def libc() -> ctypes.CDLL:
    """This process's C library, keeping ``errno`` for :func:`checked`."""
    found = ctypes.CDLL(None, use_errno=True)
    found.syscall.restype = ctypes.c_long
    return found


def checked(found: int) -> int:
    """``found``, the result of a C call that answers -1 on failure.

    Raises:
        OSError: it failed (with the C library's ``errno``).
    """
    if found < 0:
        error = ctypes.get_errno()
        raise OSError(error, os.strerror(error))
    return int(found)


def syscall(number: int, *arguments: object) -> int:
    """The system call ``number`` on ``arguments`` (ints, or ctypes pointers).

    Raises:
        OSError: it failed.
    """
    # Whole registers: a variadic call would pass a Python int as a 32-bit C int.
    words = [ctypes.c_long(a) if isinstance(a, int) else a for a in arguments]
    return checked(libc().syscall(ctypes.c_long(number), *words))

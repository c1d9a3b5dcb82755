"""Refusing system calls to a process and everything it starts, for good, with a seccomp
filter built by libseccomp (the C library behind most container runtimes' filters;
``libseccomp2`` on Debian and Ubuntu, ``libseccomp`` elsewhere).

A refused call fails with ``EACCES`` (``PermissionError``) and does nothing; every other
call runs as usual. The filter holds for the architecture the process runs as: a system
call made through another one (a 32-bit call from a 64-bit process) kills it. Where the
library is missing or the kernel refuses the filter, :func:`refuse` says why and changes
nothing.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
from collections.abc import Iterable

_ALLOW = 0x7FFF0000  # SCMP_ACT_ALLOW
_FAIL = 0x00050000 | errno.EACCES  # SCMP_ACT_ERRNO(EACCES)
_UNKNOWN = -1  # __NR_SCMP_ERROR: the architecture has no such call


def refuse(calls: Iterable[str]) -> str:
    """Refuse each system call named in ``calls`` (those this architecture has) to this
    process and what it starts; what was done, in words ("seccomp"), or why nothing was
    ("no seccomp: …")."""
    if not available():
        return "no seccomp: libseccomp is not installed"
    library = _libseccomp()
    context = library.seccomp_init(_ALLOW)
    if not context:
        return "no seccomp: libseccomp could not start a filter"
    try:
        for name in calls:
            number = library.seccomp_syscall_resolve_name(name.encode())
            failed = number != _UNKNOWN and library.seccomp_rule_add(context, _FAIL, number, 0)
            if failed:
                return f"no seccomp: {name}: {os.strerror(-failed)}"
        # It sets no_new_privs first, as an unprivileged process must.
        failed = library.seccomp_load(context)
        return f"no seccomp: {os.strerror(-failed)}" if failed else "seccomp"
    finally:
        library.seccomp_release(context)


def available() -> bool:
    """Whether :func:`refuse` can build a filter here (libseccomp is installed)."""
    try:
        _libseccomp()
    except OSError:
        return False
    return True


@functools.cache
def _libseccomp() -> ctypes.CDLL:
    library = ctypes.CDLL("libseccomp.so.2")  # its soname since 2012
    library.seccomp_init.restype = ctypes.c_void_p
    library.seccomp_init.argtypes = [ctypes.c_uint32]
    library.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    library.seccomp_rule_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                                         ctypes.c_uint]  # fmt: skip
    library.seccomp_load.argtypes = [ctypes.c_void_p]
    library.seccomp_release.argtypes = [ctypes.c_void_p]
    return library

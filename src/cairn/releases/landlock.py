"""Linux Landlock: a process restricting itself, without privileges, to the files it may
read and write, no TCP connections, and no signals or abstract sockets to processes
outside it — for itself and every process it starts, irrevocably.

Landlock is in Linux 5.13 and later (TCP rules from 6.7, signal scoping from 6.12). Each
kernel announces the version of the interface it has (its ABI); :func:`restrict` asks for
every restriction that version knows and reports what it got, so an older kernel gives
less, never an error. Where there is no Landlock at all (another OS, an older kernel, a
seccomp profile that forbids the calls), :func:`restrict` says why and changes nothing.

Rules name folders and files: what is beneath an allowed folder is allowed, everything
else is refused with ``PermissionError`` (``EACCES``) when opened. A restriction applies
to the calling thread and what it starts afterwards: restrict before starting threads.
"""

from __future__ import annotations

import ctypes
import os
import stat
import sys
from collections.abc import Iterable
from pathlib import Path

from cairn.releases.libc import checked, libc, syscall

# <linux/landlock.h>; the system calls have one number on every architecture.
_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38

_EXECUTE, _WRITE_FILE, _READ_FILE, _READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_REFER, _TRUNCATE, _IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
_FS_V1 = (1 << 13) - 1  # execute … make_sym: every right of the first version
_FILE_RIGHTS = _EXECUTE | _WRITE_FILE | _READ_FILE | _TRUNCATE | _IOCTL_DEV  # on a file
_NET_TCP = (1 << 0) | (1 << 1)  # bind, connect (version 4)
_SCOPED = (1 << 0) | (1 << 1)  # abstract unix sockets, signals (version 6)
READ = _READ_FILE | _READ_DIR | _EXECUTE


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def abi() -> int:
    """The kernel's Landlock version; 0 where there is none."""
    if not sys.platform.startswith("linux"):
        return 0
    try:
        found = syscall(_CREATE_RULESET, None, 0, _CREATE_RULESET_VERSION)
    except OSError:
        return 0
    return max(found, 0)


def restrict(readable: Iterable[Path], writable: Iterable[Path]) -> str:
    """Allow this process (and what it starts) to read and run only what is beneath
    ``readable`` and to change only what is beneath ``writable``; no TCP where the kernel
    can refuse it, no signals out; returns what was done ("landlock v6"), or why nothing
    was ("no landlock: …"). Paths that do not exist are left out."""
    version = abi()
    if version == 0:
        return "no landlock: the kernel does not offer it"
    handled = _handled_fs(version)
    attr = _RulesetAttr(handled, _NET_TCP if version >= 4 else 0, _SCOPED if version >= 6 else 0)
    size = 8 if version < 4 else (16 if version < 6 else 24)  # the struct as that kernel knows it
    try:
        ruleset = syscall(_CREATE_RULESET, ctypes.byref(attr), size, 0)
        try:
            for paths, rights in ((readable, READ), (writable, handled)):
                for path in paths:
                    _allow(ruleset, path, rights & handled)
            _prctl_no_new_privs()
            syscall(_RESTRICT_SELF, ruleset, 0)
        finally:
            os.close(ruleset)
    except OSError as exc:
        return f"no landlock: {exc.strerror or exc}"
    return f"landlock v{version}"


def _handled_fs(version: int) -> int:
    rights = _FS_V1
    for since, right in ((2, _REFER), (3, _TRUNCATE), (5, _IOCTL_DEV)):
        if version >= since:
            rights |= right
    return rights


def _allow(ruleset: int, path: Path, rights: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:  # not there (or not reachable): nothing to allow
        return
    try:
        if not stat.S_ISDIR(os.fstat(fd).st_mode):
            rights &= _FILE_RIGHTS  # a folder's rights on a file are refused (EINVAL)
        rule = _PathBeneathAttr(rights, fd)
        syscall(_ADD_RULE, ruleset, _RULE_PATH_BENEATH, ctypes.byref(rule), 0)
    finally:
        os.close(fd)


def _prctl_no_new_privs() -> None:
    """Required before restricting without privileges: nothing started later gains any
    (no set-user-id programs)."""
    checked(libc().prctl(_PR_SET_NO_NEW_PRIVS, *map(ctypes.c_ulong, (1, 0, 0, 0))))

"""Dropping every Linux capability a process holds, for good.

A worker started by a server running as root holds root's capabilities, and one that made
a user namespace (:mod:`cairn.releases.netns`) holds every capability inside it: with
them a model's code could raise its own limits, reconfigure its network namespace (the
netfilter code that configuration reaches is a frequent kernel attack surface), set the
clock, load kernel modules or reboot the machine. With none left (effective, permitted
and inheritable) and ``no_new_privs`` set (Landlock and seccomp set it), nothing it starts
gains any back. A process running as root keeps its user id: it reads and writes what the
permission bits let root's user id, without overriding them.
"""

from __future__ import annotations

import ctypes
import sys

from cairn.releases.libc import checked, libc

_VERSION_3 = 0x20080522  # _LINUX_CAPABILITY_VERSION_3: two 32-bit words of each set


class _Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _Sets(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]  # fmt: skip


def drop_all() -> str:
    """Drop every capability of this process; what was done, in words ("capabilities
    dropped"), or why nothing was ("no capability dropped: …")."""
    if not sys.platform.startswith("linux"):
        return "no capability dropped: not Linux"
    empty = (_Sets * 2)()  # zero: no capability in any set
    try:
        checked(libc().capset(ctypes.byref(_Header(_VERSION_3, 0)), empty))
    except OSError as exc:
        return f"no capability dropped: {exc.strerror or exc}"
    return "capabilities dropped"

"""A network namespace of the process's own: no network at all, whatever the protocol.

In a new network namespace a process has only a loopback interface of its own, down: no
socket of any internet protocol — TCP, MPTCP, UDP, SCTP, raw — reaches the host's
interfaces, its loopback (a database or a server listening on 127.0.0.1) or beyond. The
kernel checks this below every protocol, where rules about one protocol (Landlock's TCP
rules) leave the others open.

As root (``CAP_SYS_ADMIN``), :func:`enter` makes the network namespace alone; otherwise it
makes a user namespace with it, which unprivileged processes may do where the kernel allows
it (most distributions; not Docker's default seccomp profile, nor where
``kernel.unprivileged_userns_clone`` or ``user.max_user_namespaces`` forbid it), mapping
the process's user and group to themselves so files keep their owners. The user namespace
gives the process every capability over the new namespaces: drop them right after
(:func:`cairn.releases.capabilities.drop_all`).

A namespace does not cover Unix-domain sockets named by a path (they are files, found
through the file system): :mod:`cairn.releases.seccomp` refuses to make any socket.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

from cairn.releases.libc import checked, libc

_CLONE_NEWUSER = 0x10000000
_CLONE_NEWNET = 0x40000000


def enter() -> str:
    """Move this process (single-threaded) into a new network namespace; what was done,
    in words ("network namespace"), or why nothing was ("no network namespace: …")."""
    if not sys.platform.startswith("linux"):
        return "no network namespace: not Linux"
    try:
        _unshare(_CLONE_NEWNET)  # root
        return "network namespace"
    except OSError:
        pass
    user, group = os.geteuid(), os.getegid()
    try:
        _unshare(_CLONE_NEWUSER | _CLONE_NEWNET)
    except OSError as exc:
        return f"no network namespace: {exc.strerror or exc}"
    _map_to_themselves(user, group)
    return "network namespace (in a user namespace)"


def _unshare(flags: int) -> None:
    checked(libc().unshare(flags))


def _map_to_themselves(user: int, group: int) -> None:
    """Keep this process's user and group ids inside the new user namespace (unmapped,
    they read as 65534: "nobody"). Best effort: the namespace isolates either way."""
    proc = Path("/proc/self")
    with contextlib.suppress(OSError):
        (proc / "uid_map").write_text(f"{user} {user} 1\n")
        (proc / "setgroups").write_text("deny\n")  # required before writing gid_map
        (proc / "gid_map").write_text(f"{group} {group} 1\n")

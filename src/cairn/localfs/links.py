"""Linking a file and a stored object instead of copying the bytes: what
``cairn data checkout --link`` does from the store, and ``cairn data add --link`` into it.

- ``reflink``: a copy-on-write clone (Btrfs, XFS, …): instant, and the file is the user's
  to change; the bytes are shared until one side changes them.
- ``hardlink``: the file *is* the store's object. The object is made read-only first, so
  an edit in place fails instead of damaging every version that holds those bytes; to
  change such a file, replace it (write a new one and rename it over), as most tools do.
  A read-only mode stops nothing where the process may write any file (root) or the file
  system ignores modes: there a hard link would leave the stored copy one careless edit
  from damage, so nothing is hard-linked and the file is copied instead. Whether the mode
  holds is tried, once per device, on a scratch file (``read_only_protects``).

Only files stored as objects of their own (1 MiB and more) in a store on the local disk
can be linked; small files live inside bundles and are copied, as is everything when the
file system cannot link (another device, no reflink support). Each object is verified
against its digest before it is linked: a damaged object is never handed out.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat

from cairn.core.data import LinkMode
from cairn.localfs.atomic import temporary_name

# From linux/fs.h: _IOW(0x94, 9, int), "clone the whole of this file into that one".
_FICLONE = 0x40049409
# What a file system says when it cannot link here: a copy is made instead.
_CANNOT = {errno.EXDEV, errno.EPERM, errno.EOPNOTSUPP, errno.ENOTTY, errno.EINVAL, errno.EMLINK}
_PROTECTS: dict[int, bool] = {}  # device -> whether read-only files there stop this process
UNPROTECTED = (
    "--link hardlink: this account can write to read-only files here (root, or a file "
    "system that ignores permissions), so a hard link would leave the stored copy open to "
    "an edit in place: the files were copied instead"
)


def link_object(source: str, target: str, mode: LinkMode) -> os.stat_result | None:
    """Make ``target`` a link of ``source`` (replacing what is there atomically); its
    ``stat``, or None when the file system cannot link them, or a hard link could not be
    kept read-only here (the caller copies)."""
    folder = os.path.dirname(target)
    os.makedirs(folder, exist_ok=True)
    if mode == LinkMode.HARDLINK and not read_only_protects(folder):
        return None
    # Created exclusively below (link and clone both refuse to overwrite), then renamed
    # over the target.
    temporary = temporary_name(folder, ".link")
    try:
        if mode == LinkMode.HARDLINK:
            _read_only(source)
            os.link(source, temporary)
        else:
            _clone(source, temporary)
        os.replace(temporary, target)
        return os.stat(target)
    except OSError as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        if exc.errno in _CANNOT:
            return None
        raise


def read_only_protects(folder: str) -> bool:
    """Whether a file in ``folder`` made read-only is safe from this process's writes: not
    for root (nor any process allowed to override modes), nor on a file system that
    ignores modes. Tried once per device on a scratch file, as a hard link would be made.
    """
    device = os.stat(folder).st_dev
    if device not in _PROTECTS:
        found = _refuses_writes(folder)
        if found is None:
            return True  # nothing can be created here: nothing will be linked here either
        _PROTECTS[device] = found
    return _PROTECTS[device]


def _refuses_writes(folder: str) -> bool | None:
    """None when no scratch file can be made in ``folder``."""
    probe = temporary_name(folder, ".probe")
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    except OSError:
        return None
    try:
        return _stops_writes(probe)
    finally:
        os.unlink(probe)


def _stops_writes(path: str) -> bool:
    try:
        _read_only(path)
    except OSError:
        return False  # no file can be made read-only here
    try:
        os.close(os.open(path, os.O_WRONLY))  # writes nothing: only asks whether it may
    except OSError:
        return True
    return False


def _read_only(path: str) -> None:
    mode = os.stat(path).st_mode
    if mode & 0o222:
        os.chmod(path, stat.S_IMODE(mode) & ~0o222)


def _clone(source: str, target: str) -> None:
    import fcntl  # POSIX only; elsewhere there is no FICLONE to ask for

    with open(source, "rb") as src:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            fcntl.ioctl(fd, _FICLONE, src.fileno())
        finally:
            os.close(fd)

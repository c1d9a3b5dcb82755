"""Writing a local file so that it appears whole or not at all."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

# Temporary files are named on their own, never after the file they become: a name near
# the file system's limit (255 bytes) with anything added to it could not be created.
TEMPORARY_PREFIX = ".cairn-"


def temporary_name(folder: str, suffix: str) -> str:
    """A short, random name in ``folder``: for a file renamed over another there once it
    is whole (a rename is atomic only within one file system)."""
    return os.path.join(folder, f"{TEMPORARY_PREFIX}{os.urandom(6).hex()}{suffix}")


def write_atomically(chunks: Iterable[bytes], dest: Path) -> None:
    """Write to a temporary file beside ``dest``, then rename it into place.

    If reading the chunks fails (a verification error on the last one, say), ``dest`` is
    left as it was and the temporary file is removed. Parent folders are created.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=TEMPORARY_PREFIX, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

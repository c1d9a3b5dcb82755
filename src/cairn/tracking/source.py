"""Where a run comes from: the code commit and the entry point, captured at run start."""

from __future__ import annotations

import getpass
import os
import subprocess
import sys
from pathlib import Path


def git_commit(cwd: Path | None = None) -> str | None:
    """The commit checked out in the git work tree around ``cwd``, if there is one."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None  # no git installed, or it hung: a run must still start
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and commit else None


def entry_point() -> str | None:
    """The script or module that started the process, as a user would name it."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if path and Path(path).is_file():
        return str(Path(path).resolve())
    return path or sys.argv[0] or None  # "<stdin>", "-c", a notebook kernel …


def current_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER", "unknown")

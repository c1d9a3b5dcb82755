"""Where a run comes from: the code commit and the entry point, captured at run start."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cairn.core.actor import os_account


def git_commit(cwd: Path | None = None) -> str | None:
    """The commit checked out in the git work tree around ``cwd``, if there is one."""
    commit = _git(["rev-parse", "HEAD"], cwd)
    return commit.strip() or None if commit is not None else None


def git_dirty(cwd: Path | None = None) -> bool | None:
    """Whether the work tree around ``cwd`` has uncommitted changes (None: not in one)."""
    changes = _git(["status", "--porcelain", "--untracked-files=no"], cwd)
    return None if changes is None else bool(changes.strip())


def _git(arguments: list[str], cwd: Path | None) -> str | None:
    """What git prints, or None when git is missing, hangs, or this is no work tree: a
    run must start whatever git says."""
    try:
        done = subprocess.run(
            ["git", *arguments], cwd=cwd, capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def entry_point() -> str | None:
    """The script or module that started the process, as a user would name it."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if path and Path(path).is_file():
        return str(Path(path).resolve())
    return path or sys.argv[0] or None  # "<stdin>", "-c", a notebook kernel …


def current_user() -> str:
    """Who starts a run here: the account the process runs as, not ``$USER``."""
    return os_account()

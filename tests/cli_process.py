"""Running the ``cairn`` command line in a new process, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys


def cairn_cli(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    """``python -m cairn ARGS`` in this environment; ``ok``: it must succeed (or fail)."""
    done = subprocess.run(
        [sys.executable, "-m", "cairn", *args], capture_output=True, text=True, timeout=120,
        env=os.environ.copy(), check=False,
    )  # fmt: skip
    assert (done.returncode == 0) is ok, done.stderr
    return done

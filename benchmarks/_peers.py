"""The peers' virtualenvs: each benchmark runs its peer (MLflow, DVC, Metaflow) from its
own, made under benchmarks/ when missing, so the peer's dependencies never meet Cairn's."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

_SHOWN = 15  # lines of a failed install's output that say why it failed


def ensure_venv(venv: Path, requirements: list[str], probe: str) -> Path:
    """The venv's python, after installing ``requirements`` if ``import probe`` fails.

    Raises:
        RuntimeError: the install failed; the message ends with the last lines pip printed
            (a benchmark may carry on without that peer and say why).
    """
    python = venv / "bin" / "python"
    if python.exists():
        check = subprocess.run([str(python), "-c", f"import {probe}"], capture_output=True)
        if check.returncode == 0:
            return python
    print(f"setting up {venv.name} with {' '.join(requirements)} …", flush=True)
    base_python = shutil.which("python3") or sys.executable
    subprocess.run([base_python, "-m", "venv", "--clear", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    done = subprocess.run([*pip, *requirements], capture_output=True, text=True)
    if done.returncode != 0:
        tail = "\n".join(f"{done.stdout}{done.stderr}".splitlines()[-_SHOWN:])
        raise RuntimeError(f"pip install {' '.join(requirements)} failed:\n{tail}")
    return python


def installed(venv: Path, requirements: list[str]) -> str:
    """The version the venv holds of each requirement's package, as "name version, …"."""
    names = [re.split(r"[=<>!~\[ ]", requirement)[0] for requirement in requirements]
    code = ("import sys, importlib.metadata as m\n"
            "print(', '.join(f'{n} {m.version(n)}' for n in sys.argv[1:]))")  # fmt: skip
    done = subprocess.run([str(venv / "bin" / "python"), "-c", code, *names],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return done.stdout.strip()

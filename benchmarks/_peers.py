"""The peers' virtualenvs: each benchmark runs its peer (MLflow, DVC, Metaflow) from its
own, made under benchmarks/ when missing, so the peer's dependencies never meet Cairn's."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path


def ensure_venv(venv: Path, requirements: list[str], probe: str) -> Path:
    """The venv's python, after installing ``requirements`` if ``import probe`` fails."""
    python = venv / "bin" / "python"
    if python.exists():
        check = subprocess.run([str(python), "-c", f"import {probe}"], capture_output=True)
        if check.returncode == 0:
            return python
    print(f"setting up {venv.name} with {' '.join(requirements)} …", flush=True)
    base_python = shutil.which("python3") or sys.executable
    subprocess.run([base_python, "-m", "venv", "--clear", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, *requirements], check=True)
    return python

"""The public SDK is exactly what ``cairn.__all__`` lists, sorted, and every name loads."""

from __future__ import annotations

import subprocess
import sys

import cairn


def test_all_is_sorted_and_every_name_resolves() -> None:
    assert cairn.__all__ == sorted(cairn.__all__)
    for name in cairn.__all__:
        assert getattr(cairn, name) is not None


def _heavy_modules_loaded_by(statement: str) -> str:
    heavy = "('sqlalchemy', 'httpx', 'fastapi', 'fsspec', 'uvicorn')"
    code = f"import sys; {statement}; print(' '.join(m for m in {heavy} if m in sys.modules))"
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return loaded.stdout.strip()


def test_import_cairn_loads_no_storage_or_web_stack() -> None:
    """``import cairn`` stays light: the CLI and scripts start fast."""
    assert _heavy_modules_loaded_by("import cairn") == ""


def test_the_cli_starts_without_the_storage_or_web_stack() -> None:
    """Every ``cairn`` command pays for what the CLI imports before it runs."""
    assert _heavy_modules_loaded_by("import cairn.cli.main") == ""

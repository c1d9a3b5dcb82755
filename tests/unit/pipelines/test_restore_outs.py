"""A cached command step's outputs are written back only where the step declares them.

The cached value (``{"outs": {path: digest}}``) is a record anyone who may write in the
experiment could have made, so the paths it names are checked before anything is written:
a forged one must not put a file anywhere else in the project (a ``conftest.py`` runs
with the next ``pytest``) or outside it."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from cairn.errors import IntegrityError, InvalidState
from cairn.pipelines.declared import _DeclaredStep, _restore_outs
from cairn.stores.artifacts.fsspec import FsspecArtifactStore


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    return folder


def _step(project: Path, outs: list[str]) -> _DeclaredStep:
    body = {"cmd": "true", "outs": outs}
    return _DeclaredStep("p", "make", body, project, "cairn.yaml")


def _stored(tmp_path: Path, content: bytes) -> tuple[FsspecArtifactStore, str]:
    store = FsspecArtifactStore(str(tmp_path / "objects"))
    return store, store.put_stream(io.BytesIO(content)).digest


def test_declared_outputs_come_back(project: Path, tmp_path: Path) -> None:
    store, digest = _stored(tmp_path, b"result")
    value = {"outs": {"out/a.txt": digest, "model.bin": digest}}
    _restore_outs(_step(project, ["out/", "model.bin"]), value, store)
    assert (project / "out" / "a.txt").read_bytes() == b"result"
    assert (project / "model.bin").read_bytes() == b"result"


@pytest.mark.parametrize(
    "forged",
    ["conftest.py", "../outside.txt", "/tmp/abs.txt", "out/../conftest.py", "outsider/x"],
)
def test_a_forged_value_writes_nothing_the_step_does_not_declare(
    project: Path, tmp_path: Path, forged: str
) -> None:
    store, digest = _stored(tmp_path, b"import os  # runs with pytest")
    before = sorted(p for p in tmp_path.rglob("*") if "objects" not in p.parts)
    with pytest.raises(IntegrityError, match="may not write"):
        _restore_outs(_step(project, ["out"]), {"outs": {forged: digest}}, store)
    assert sorted(p for p in tmp_path.rglob("*") if "objects" not in p.parts) == before


def test_a_declared_output_behind_a_link_out_of_the_project_is_refused(
    project: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, project / "out")
    store, digest = _stored(tmp_path, b"x")
    with pytest.raises(InvalidState, match="out"):
        _restore_outs(_step(project, ["out"]), {"outs": {"out/a.txt": digest}}, store)
    assert list(outside.iterdir()) == []

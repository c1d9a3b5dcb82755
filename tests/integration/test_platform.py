"""The SDK's platform: one database engine per process, replaced whole by ``configure``,
and garbage collection that keeps every object something recorded."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from sklearn.linear_model import LogisticRegression

import cairn
import cairn.data
import cairn.models
import cairn.releases
import cairn.stores.metadata.engine as engine_module
from cairn import sdk
from cairn.config import load_settings
from cairn.errors import NotFound
from cairn.platform import collect_garbage


def _count_engines(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    opened: list[str] = []
    real = engine_module.create_engine

    def counting(url: object, *args: object, **kwargs: object) -> object:
        opened.append(str(url))
        return real(url, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(engine_module, "create_engine", counting)
    return opened


def _dataset(folder: Path, name: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.csv").write_text("x,target\n1,0\n2,1\n")
    sdk.data().add(folder / f"{name}.csv", name)


def test_every_capability_of_the_sdk_shares_one_engine(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # the project folder data versions are added from
    opened = _count_engines(monkeypatch)
    with cairn.start_run(experiment="e") as run:
        run.log_metric("m", 1.0)
        run.log_model(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), name="m")
    _dataset(tmp_path / "work", "customers")
    cairn.data.get("customers@1")
    cairn.models.list_models()
    cairn.releases.create_environment("staging")
    cairn.releases.environments()
    cairn.releases.check("m/1", "staging")
    assert len(opened) == 1, opened


def test_configure_moves_data_versions_to_the_new_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    cairn.configure(home=str(tmp_path / "a"))
    _dataset(tmp_path / "work", "customers")
    assert cairn.data.get("customers@1").is_relative_to(tmp_path / "a")
    cairn.configure(home=str(tmp_path / "b"))
    with pytest.raises(NotFound):
        cairn.data.get("customers@1")  # home b has no such dataset
    _dataset(tmp_path / "work", "customers")
    assert cairn.data.get("customers@1").is_relative_to(tmp_path / "b")


def test_gc_keeps_the_package_of_a_model_registered_without_a_run() -> None:
    model = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    sdk.models().register(model, "standalone")
    sdk.platform().artifacts.put_stream(io.BytesIO(b"nothing refers to this"))
    collected = collect_garbage(load_settings(), grace_seconds=0)
    assert collected.removed == 1  # the orphan, and only it
    assert cairn.models.load("standalone/1").predict([[1.0]]).tolist() == [1]

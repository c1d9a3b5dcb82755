"""Where settings come from: arguments > environment > cairn.yaml > defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from cairn.config import load_settings
from cairn.errors import InvalidInput


def test_defaults_to_home_folder_outside_a_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    settings = load_settings(cwd=tmp_path, environ={})
    assert settings.home == (tmp_path / "user" / ".cairn").resolve()
    assert settings.db_url == f"sqlite:///{settings.home / 'cairn.db'}"
    assert settings.uri is None
    assert settings.experiment == "Default"


def test_project_store_is_found_upwards(tmp_path: Path) -> None:
    (tmp_path / ".cairn").mkdir()
    deep = tmp_path / "src" / "pkg"
    deep.mkdir(parents=True)
    settings = load_settings(cwd=deep, environ={})
    assert settings.home == (tmp_path / ".cairn").resolve()
    assert settings.project_root == tmp_path.resolve()


def test_precedence(tmp_path: Path) -> None:
    (tmp_path / "cairn.yaml").write_text(
        "experiment: from-file\nuri: http://file:1\nartifacts: /a\n"
    )
    env = {"CAIRN_EXPERIMENT": "from-env", "CAIRN_HOME": str(tmp_path / "h")}
    settings = load_settings(cwd=tmp_path, environ=env, experiment="from-argument")
    assert settings.experiment == "from-argument"
    assert settings.uri == "http://file:1"
    assert settings.artifacts_url == "/a"
    assert load_settings(cwd=tmp_path, environ=env).experiment == "from-env"
    assert settings.home == (tmp_path / "h").resolve()


def test_bad_configuration_is_named(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="CAIRN_URI 'ftp://x'"):
        load_settings(cwd=tmp_path, environ={"CAIRN_URI": "ftp://x"})
    (tmp_path / "cairn.yaml").write_text("uri: [1, 2]\n")
    with pytest.raises(InvalidInput, match="'uri' must be a string"):
        load_settings(cwd=tmp_path, environ={})
    (tmp_path / "cairn.yaml").write_text("uri: : :\n")
    with pytest.raises(InvalidInput, match="cannot read it as YAML"):
        load_settings(cwd=tmp_path, environ={})

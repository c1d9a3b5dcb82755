"""Where settings come from: arguments > environment > cairn.yaml > defaults."""

from __future__ import annotations

import re
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
    with pytest.raises(InvalidInput, match=r"not valid YAML \(line 1, column 6\)"):
        load_settings(cwd=tmp_path, environ={})


DEEP = b"[" * 5000 + b"]" * 5000  # deeper than a parser that recurses once a level can go


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"experiment: caf\xe9\n", r"not UTF-8 text \(byte 0xe9 at offset 15\)"),
        (DEEP, "not valid YAML.*: exceeded maximum nesting depth"),
        (b"experiment: 2024-13-45\n", "not valid YAML: month must be in 1..12"),
        (b'audit_key: "/tmp/\\0x"\n', r"audit_key '/tmp/\\x00x': contains a NUL character"),
        (b'uri: "http://[::1"\n', "uri 'http://\\[::1': expected the address of a Cairn server"),
        (b"uri: http://127.0.0.1:99999\n", "uri 'http://127.0.0.1:99999': expected the address"),
    ],
)
def test_a_hostile_cairn_yaml_is_one_error_naming_the_file(
    tmp_path: Path, content: bytes, problem: str
) -> None:
    (tmp_path / "cairn.yaml").write_bytes(content)
    with pytest.raises(
        InvalidInput, match=f"^{re.escape(str(tmp_path / 'cairn.yaml'))}: {problem}"
    ):
        load_settings(cwd=tmp_path, environ={})


def test_a_nul_in_a_setting_names_where_it_came_from(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"^home 'a\\x00b': contains a NUL character"):
        load_settings(cwd=tmp_path, environ={}, home="a\0b")


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"\xff\xfe", r"not UTF-8 text \(byte 0xff at offset 0\)"),
        (DEEP, "not valid YAML.*: exceeded maximum nesting depth"),
        (
            b"servers: {'http://h:1': {'a': 1}}\n",
            "expected 'servers:' mapping each URL to its token",
        ),
    ],
)
def test_a_broken_credentials_file_is_one_error_naming_it(
    tmp_path: Path, content: bytes, problem: str
) -> None:
    kept = tmp_path / "config" / "cairn" / "credentials.yaml"
    kept.parent.mkdir(parents=True)
    kept.write_bytes(content)
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config"), "CAIRN_URI": "http://h:1"}
    with pytest.raises(InvalidInput, match=f"^{re.escape(str(kept))}: {problem}"):
        load_settings(cwd=tmp_path, environ=env)

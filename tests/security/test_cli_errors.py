"""Hostile or careless files met by the ``cairn`` command: a configuration file that is not
UTF-8 or is nested thousands deep, a NUL in a path, a lock file or credentials file that is
not what Cairn writes, a database this account may not write. Each is one line on stderr
naming the file and what is wrong, exit code 1: never a traceback, never "internal error".
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import cairn

DEEP = b"[" * 5000 + b"]" * 5000


def cairn_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None, prefix: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, sys.executable, "-m", "cairn", *args], capture_output=True, text=True,
        timeout=120, cwd=cwd, env={**os.environ, **(env or {})}, check=False,
    )  # fmt: skip


def assert_one_line_error(done: subprocess.CompletedProcess[str], *named: str) -> str:
    """The command failed as a user's error: one line, naming each of ``named``."""
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "internal error" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: ")
    for name in named:
        assert name in line
    return line


CONFIG_FILES = {
    "not UTF-8": (b"experiment: caf\xe9\n", "not UTF-8 text"),
    "nested 5,000 deep": (DEEP, "exceeded maximum nesting depth"),
    "a NUL in audit_key": (b'audit_key: "/tmp/\\0x"\n', "audit_key '/tmp/\\x00x': contains a NUL"),
    "a server address that does not parse": (b'uri: "http://[::1"\n', "uri 'http://[::1'"),
}


@pytest.mark.parametrize("case", CONFIG_FILES)
def test_a_hostile_cairn_yaml(case: str, tmp_path: Path) -> None:
    content, problem = CONFIG_FILES[case]
    (tmp_path / "cairn.yaml").write_bytes(content)
    done = cairn_cli("runs", "list", cwd=tmp_path)
    assert_one_line_error(done, f"{tmp_path / 'cairn.yaml'}: ", problem)


def test_a_lock_file_nested_5000_deep(tmp_path: Path) -> None:
    (tmp_path / "cairn.yaml").touch()
    (tmp_path / "cairn.lock").write_bytes(DEEP)
    done = cairn_cli("data", "status", cwd=tmp_path)
    assert_one_line_error(done, f"{tmp_path / 'cairn.lock'}: ", "exceeded maximum nesting depth")


def test_a_credentials_file_that_is_not_utf8(tmp_path: Path) -> None:
    kept = tmp_path / "config" / "cairn" / "credentials.yaml"
    kept.parent.mkdir(parents=True)
    kept.write_bytes(b"\xff\xfe")
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config"), "CAIRN_URI": "http://127.0.0.1:1"}
    done = cairn_cli("runs", "list", cwd=tmp_path, env=env)
    assert_one_line_error(done, f"{kept}: ", "not UTF-8 text")


def test_a_policy_nested_5000_deep(tmp_path: Path) -> None:
    (tmp_path / "policy.yaml").write_bytes(DEEP)
    done = cairn_cli("envs", "create", "prod", "--policy", "policy.yaml", cwd=tmp_path)
    assert_one_line_error(done, "policy", "exceeded maximum nesting depth")


@pytest.mark.parametrize(
    ("content", "problem"), [(DEEP, "exceeded maximum nesting depth"), (b"\xe9", "not UTF-8")]
)
def test_a_model_card_file_that_is_not_yaml(content: bytes, problem: str, tmp_path: Path) -> None:
    (tmp_path / "card.yaml").write_bytes(content)
    done = cairn_cli("models", "card", "churn/1", "--edit", "card.yaml", cwd=tmp_path)
    assert_one_line_error(done, "--edit card.yaml: ", problem)


def as_ordinary_user() -> tuple[str, ...]:
    """A command prefix under which file modes bind as they bind an ordinary account: root
    gives up the capabilities that let it read and write past them."""
    if os.geteuid() != 0:
        return ()
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("root without setpriv: file modes cannot be made to bind")
    return (setpriv, "--bounding-set", "-dac_override,-dac_read_search")


def a_finished_run() -> str:
    """A run in this test's store, which this process then lets go of."""
    with cairn.start_run(experiment="churn") as run:
        run.log_metric("auc", 0.9)
    cairn.sdk.close()
    return run.id


def test_a_read_only_database_names_the_files_to_make_writable(
    tmp_path: Path, cairn_home: Path
) -> None:
    """A write to a database made read-only is one line naming it; once it is writable
    again, SQLite's shared-memory file it made meanwhile (read-only, like the database
    then) is named, and making it writable is all it takes."""
    run_id = a_finished_run()
    user = as_ordinary_user()
    database = cairn_home / "cairn.db"
    database.chmod(0o444)
    assert cairn_cli("runs", "list", cwd=tmp_path, prefix=user).returncode == 0
    done = cairn_cli("runs", "delete", run_id, cwd=tmp_path, prefix=user)
    line = assert_one_line_error(done, f"metadata database sqlite:///{database} cannot be written")
    assert f"may not write {database} " in line
    database.chmod(0o644)
    done = cairn_cli("runs", "delete", run_id, cwd=tmp_path, prefix=user)
    line = assert_one_line_error(done, f"chmod u+w {database}-shm)")
    assert f"{database} " not in line.partition("may not write")[2]
    Path(f"{database}-shm").chmod(0o644)
    done = cairn_cli("runs", "delete", run_id, cwd=tmp_path, prefix=user)
    assert done.returncode == 0, done.stderr


def test_an_unreadable_signing_key_is_one_line_naming_it(tmp_path: Path, cairn_home: Path) -> None:
    """An error the operating system reports about a file, wherever in Cairn it is met,
    names the file and what the system said."""
    a_finished_run()
    [key] = (cairn_home / "keys").iterdir()
    key.chmod(0o000)
    done = cairn_cli("audit", "checkpoint", cwd=tmp_path, prefix=as_ordinary_user())
    assert_one_line_error(done, f"error: {key}: Permission denied")

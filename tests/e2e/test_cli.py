"""The ``cairn`` command, run as a user runs it: a process, its output and exit code."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

import pytest

import cairn
from cairn._version import __version__
from cairn.core.access import Role
from s3_server import S3_ENV, S3Endpoint, s3_endpoint
from server_process import running_server

__all__ = ["s3_endpoint"]  # the session fixture, imported so that pytest finds it


def cli(
    *args: str, ok: bool = True, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "cairn", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )
    if ok:
        assert done.returncode == 0, done.stderr
    return done


@pytest.fixture
def runs(tmp_path: Path) -> list[str]:
    """Three finished runs in experiment 'churn', with artifacts on the first."""
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "a.txt").write_text("alpha")
    ids = []
    for i, (lr, auc) in enumerate([("0.1", 0.91), ("0.2", 0.95), ("0.3", 0.85)]):
        with cairn.start_run(experiment="churn", name=f"run-{i}") as run:
            run.log_params({"lr": lr, "depth": 6})
            run.log_metrics({"auc": auc, "acc": 0.8})
            if i == 0:
                run.log_artifacts(tmp_path / "reports", artifact_path="reports")
        ids.append(run.id)
    cairn.sdk.close()
    return ids


def test_version() -> None:
    assert cli("--version").stdout.strip() == f"cairn {__version__}"


def test_runs_list_orders_and_filters(runs: list[str]) -> None:
    out = cli("runs", "list", "-e", "churn", "--order-by", "metrics.auc DESC", "--json").stdout
    assert [r["name"] for r in json.loads(out)["runs"]] == ["run-1", "run-0", "run-2"]
    out = cli("runs", "list", "--filter", "params.lr = '0.3'", "--json").stdout
    assert [r["id"] for r in json.loads(out)["runs"]] == [runs[2]]
    table = cli(
        "runs", "list", "-e", "churn", "--order-by", "metrics.auc DESC", "--limit", "2"
    ).stdout
    assert "run-1" in table
    assert "run-0" in table
    assert "run-2" not in table
    assert "metrics.auc" in table
    assert "0.95" in table


def test_runs_show_by_prefix(runs: list[str]) -> None:
    shown = cli("runs", "show", runs[0][:8]).stdout
    assert runs[0] in shown
    assert "lr" in shown
    assert "0.91" in shown
    assert "1 artifact files" in shown
    data = json.loads(cli("runs", "show", runs[0][:10], "--json").stdout)
    assert data["params"] == {"lr": "0.1", "depth": "6"}
    assert data["artifacts"][0]["path"] == "reports/a.txt"


def test_runs_compare_marks_differences(runs: list[str]) -> None:
    data = json.loads(cli("runs", "compare", runs[0], runs[1][:8], "--json").stdout)
    differs = {row["key"]: row["differs"] for row in data["rows"]}
    assert differs == {"depth": False, "lr": True, "acc": False, "auc": True}
    table = cli("runs", "compare", runs[0], runs[1]).stdout
    assert "≠" in table
    assert "params.lr" in table


def test_delete_and_restore(runs: list[str]) -> None:
    cli("runs", "delete", runs[0][:8])
    listed = json.loads(cli("runs", "list", "--json").stdout)["runs"]
    assert runs[0] not in [r["id"] for r in listed]
    deleted = json.loads(cli("runs", "list", "--view", "deleted", "--json").stdout)["runs"]
    assert [r["id"] for r in deleted] == [runs[0]]
    cli("runs", "restore", runs[0][:8])
    assert runs[0] in [r["id"] for r in json.loads(cli("runs", "list", "--json").stdout)["runs"]]


def test_artifacts_list_and_get(runs: list[str], tmp_path: Path) -> None:
    listed = json.loads(cli("artifacts", "list", runs[0], "--json").stdout)
    assert listed == [{"path": "reports", "digest": None, "size": 5, "is_dir": True}]
    assert "a.txt" in cli("artifacts", "list", runs[0], "reports").stdout
    cli("artifacts", "get", runs[0][:8], "reports", "--to", str(tmp_path / "out"))
    assert (tmp_path / "out" / "reports" / "a.txt").read_text() == "alpha"
    cli("artifacts", "get", runs[0][:8], ".", "--to", str(tmp_path / "all"))  # every file
    assert (tmp_path / "all" / "reports" / "a.txt").read_text() == "alpha"


def test_artifacts_get_of_an_empty_path_says_so_in_one_line(runs: list[str]) -> None:
    """An empty path (an unset shell variable) is refused: '.' asks for every file."""
    refused = cli("artifacts", "get", runs[0], "", ok=False)
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines() == [
        f"error: path is empty: name a file or folder of the run's artifacts, or '.' for "
        f"all of them (see `cairn artifacts list {runs[0]}`)"
    ]


def test_experiments_list(runs: list[str]) -> None:
    assert [e["name"] for e in json.loads(cli("experiments", "list", "--json").stdout)] == ["churn"]
    assert "churn" in cli("experiments", "list").stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("runs", "show", "abc"), "at least 8"),
        (("runs", "show", "0123456789abcdef"), "not found"),
        (("runs", "list", "--filter", "metrics.auc >> 1"), "position 13"),
        (("runs", "list", "-e", "nope"), "experiment 'nope' not found"),
        (("artifacts", "get", "0123456789abcdef", "x"), "not found"),
        (
            ("tokens", "create", "--user", "ada", "--expires-in-days", str(10**20)),
            "--expires-in-days: expected 1 to 36,500 days",
        ),
    ],
)
def test_user_errors_are_one_line_without_traceback(
    runs: list[str], args: tuple[str, ...], message: str
) -> None:
    done = cli(*args, ok=False)
    assert done.returncode == 1
    assert done.stderr.startswith("error: ")
    assert message in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("nosuch",), "No such command 'nosuch'"),
        (("runs", "show"), "Missing argument"),
        (("runs", "list", "--bogus"), "No such option: --bogus"),
        (("runs", "list", "--limit", "many"), "Invalid value for '--limit'"),
    ],
)
def test_usage_errors_show_the_usage_without_traceback(args: tuple[str, ...], message: str) -> None:
    done = cli(*args, ok=False)
    assert done.returncode == 2
    assert done.stderr.startswith("Usage: ")
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert "internal error" not in done.stderr


@pytest.mark.parametrize("database", ["postgresql down", "a text file", "a folder"])
def test_a_database_that_cannot_be_opened_is_one_line_naming_it(
    database: str, tmp_path: Path
) -> None:
    """A bad CAIRN_DB is the user's to fix, not a bug of Cairn's: one line naming the
    database (its password hidden) and what to check."""
    (tmp_path / "notes.db").write_text("not a database\n")
    url = {
        "postgresql down": "postgresql+psycopg://nobody:hunter2@127.0.0.1:1/cairn",
        "a text file": f"sqlite:///{tmp_path / 'notes.db'}",
        "a folder": f"sqlite:///{tmp_path}",
    }[database]
    done = cli("runs", "list", ok=False, env={"CAIRN_DB": url})
    assert done.returncode == 1
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert done.stderr.startswith(f"error: metadata database {url.replace('hunter2', '***')} ")
    assert "Check that" in done.stderr
    assert "hunter2" not in done.stderr


def test_a_file_the_system_refuses_is_one_line_naming_it(tmp_path: Path) -> None:
    """What the operating system says about a path the user gave (a folder where a file
    goes, a file that is not there) is the user's to fix, not a bug of Cairn's."""
    for given, said in ((tmp_path, "Is a directory"), (tmp_path / "nope", "No such file")):
        done = cli("models", "card", "churn/1", "--edit", str(given), ok=False)
        assert done.returncode == 1
        assert done.stderr.startswith(f"error: {given}: {said}"), done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_an_os_error_raised_by_code_is_still_reported_as_a_bug(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An OSError without an errno is not the system refusing a path: it gets what a bug
    gets, the traceback and "internal error" (exit code 2)."""
    from cairn.cli.main import _report_system_error

    try:
        raise OSError("not the system")
    except OSError as exc:
        with pytest.raises(SystemExit) as exited:
            _report_system_error(exc)
    assert exited.value.code == 2
    stderr = capsys.readouterr().err
    assert "OSError: not the system" in stderr
    assert "internal error: this is a bug in Cairn" in stderr


class _Constant:
    """A model with no library behind it: quick to register."""

    def predict(self, rows: list[Any]) -> list[int]:
        return [0 for _ in rows]


def test_an_attestation_to_a_path_the_system_refuses_is_one_line(tmp_path: Path) -> None:
    """`models attest -o` into a folder that is not there, or onto a folder: one line
    naming the path; nothing is written."""
    with cairn.start_run(experiment="churn") as run:
        run.log_model(_Constant(), name="churn")
    cairn.sdk.close()
    for output, said in ((tmp_path / "missing" / "x.json", "No such file"), (tmp_path, "Is a")):
        done = cli("models", "attest", "churn/1", "-o", str(output), ok=False)
        assert done.returncode == 1
        assert done.stderr.startswith(f"error: {output}: {said}"), done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["cairn-home"]


def test_help_lists_every_command() -> None:
    shown = cli("--help").stdout
    for command in ("run", "sweep", "reproduce", "runs", "data", "audit", "pipelines", "login"):
        assert f" {command} " in shown


def test_cli_against_a_server(runs: list[str], cairn_home: Path) -> None:
    db_url = f"sqlite:///{cairn_home / 'cairn.db'}"
    with running_server(db_url, str(cairn_home / "artifacts")) as base_url:
        out = cli(
            "runs", "list", "--order-by", "metrics.auc ASC", "--json", env={"CAIRN_URI": base_url}
        )
        assert [r["name"] for r in json.loads(out.stdout)["runs"]] == ["run-2", "run-0", "run-1"]


def test_quickstart_logs_a_sweep_and_shows_the_best(cairn_home: Path) -> None:
    done = cli("quickstart")
    assert "Best runs" in done.stdout
    assert "cairn runs show" in done.stdout
    runs = cairn.search_runs(experiment="quickstart", filter="tags.family = 'random_forest'")
    assert len(runs) == 2
    assert all(r.metrics["val_auc"].value > 0.9 for r in runs)
    assert "every run trained on the data version breast-cancer@1" in done.stdout
    [parent] = cairn.search_runs(
        experiment="quickstart", filter="attributes.name = 'quickstart-sweep'"
    )
    assert cairn.sdk.session().metadata.get_run_inputs(parent.id) == ["breast-cancer@1"]
    profile = json.loads(cli("data", "profile", "breast-cancer@1", "--json").stdout)
    table = profile["breast_cancer.csv"]
    assert (table["rows"], len(table["columns"])) == (569, 31)  # 30 features and the target
    target = table["columns"][-1]
    assert (target["name"], target["min"], target["max"], target["missing"]) == (
        "target", 0, 1, 0,
    )  # fmt: skip
    assert "registered as breast-cancer-classifier/1" in done.stdout
    champion = cairn.models.get_version("breast-cancer-classifier@champion")
    best = max(cairn.search_runs(experiment="quickstart", filter="tags.family != ''"),
               key=lambda r: r.metrics["val_auc"].value)  # fmt: skip
    assert champion.run_id == best.id
    assert cairn.models.get_card(champion.ref).training_data.startswith("breast-cancer@1")
    lineage = json.loads(cli("lineage", "breast-cancer-classifier@champion", "--json").stdout)
    assert {"kind": "data_version", "id": "breast-cancer@1"} in [
        {"kind": n["kind"], "id": n["id"]} for n in lineage["nodes"]
    ]
    assert "Released to staging: deployed (the gates passed)" in done.stdout
    served = re.search(r"Served breast-cancer-classifier@staging \(breast-cancer-classifier/1\) "
                       r"over HTTP: POST /invocations with 3 validation rows answered (\[.*?\]) "
                       r"\(true classes: (\[.*?\])\)", done.stdout)  # fmt: skip
    assert served is not None, done.stdout
    assert len(json.loads(served.group(1))) == 3
    assert set(json.loads(served.group(1))) <= {0, 1}
    # Monitored: a calm window, then a recalibrated batch drifts and retrains the model on
    # the data version that holds it, and staging runs the new version.
    assert "window 1, the validation rows: ok" in done.stdout
    assert re.search(r"window 2, .*: drift — 20 columns drifted", done.stdout), done.stdout
    assert "monitor breast-cancer-staging: ok -> drift" in done.stderr  # the alert, logged
    assert ("retrained on breast-cancer@2 by cairn.quickstart:retrain: "
            "breast-cancer-classifier/2; released to staging: deployed") in done.stdout  # fmt: skip
    retrained = cairn.models.get_version("breast-cancer-classifier@staging")
    assert retrained.version == 2
    assert retrained.description.startswith("retrained on breast-cancer@2, val_auc")
    again = cli("quickstart")  # the original data again, after the grown version 2
    assert "every run trained on the data version breast-cancer@3" in again.stdout
    assert "registered as breast-cancer-classifier/3" in again.stdout
    assert "no new version (its steps were cached)" in again.stdout  # breast-cancer@2 again
    history = json.loads(cli("envs", "history", "staging", "--json").stdout)
    assert [(d["version"], d["previous"]) for d in history] == [(3, 2), (2, 1), (1, None)]
    assert "retrained by monitor breast-cancer-staging: window 2" in history[1]["reason"]


def test_cairn_server_serves_the_embedded_store_to_token_holders(
    runs: list[str], tmp_path: Path
) -> None:
    import re

    from server_process import free_port, stop, wait_until_healthy

    port = free_port()
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "cairn", "server", "--port", str(port)], stdout=log, stderr=log
        )
        try:
            base_url = f"http://127.0.0.1:{port}"
            wait_until_healthy(base_url, server, log)
            log.seek(0)
            printed = log.read().decode()
            assert f"Cairn server on http://127.0.0.1:{port}" in printed
            assert "first start: admin account 'admin' created" in printed
            found = re.search(r"cairn_[0-9a-f]{16}_[A-Za-z0-9_-]{43}", printed)
            assert found is not None
            refused = cli("runs", "show", runs[1][:8], env={"CAIRN_URI": base_url}, ok=False)
            assert refused.returncode == 1
            assert "this server needs an API token" in refused.stderr
            env = {"CAIRN_URI": base_url, "CAIRN_TOKEN": found.group()}
            out = cli("runs", "show", runs[1][:8], "--json", env=env).stdout
            assert json.loads(out)["name"] == "run-1"

            config = {"XDG_CONFIG_HOME": str(tmp_path / "config")}
            wrong = cli("login", base_url, "--token", "cairn_x", env=config, ok=False)
            assert wrong.returncode == 1
            assert "malformed" in wrong.stderr
            kept = tmp_path / "config" / "cairn" / "credentials.yaml"
            assert not kept.exists()
            done = cli("login", base_url, "--token", found.group(), env=config)
            assert f"logged in to {base_url} as admin (an installation admin)" in done.stdout
            assert kept.stat().st_mode & 0o777 == 0o600
            logins = cli("audit", "log", "--action", "auth.login", "--json").stdout
            assert [e["actor"] for e in json.loads(logins)] == ["admin"]
            out = cli("runs", "show", runs[1][:8], "--json", env={**config, "CAIRN_URI": base_url})
            assert json.loads(out.stdout)["name"] == "run-1"  # the stored token is used
        finally:
            stop(server)


def test_audit_log_checkpoint_and_verify(runs: list[str], cairn_home: Path) -> None:
    events = json.loads(cli("audit", "log", "--object", f"run:{runs[0]}", "--json").stdout)
    actions = [e["action"] for e in events]
    assert actions[0] == "run.create"
    assert "run.add_artifacts" in actions
    assert actions[-1] == "run.end"
    assert all(e["actor"].startswith("local:") for e in events)
    ended = json.loads(cli("audit", "log", "--action", "run.end", "--json").stdout)
    assert sorted(e["object_id"] for e in ended) == sorted(runs)
    assert json.loads(cli("audit", "log", "--since", "2999-01-01", "--json").stdout) == []

    signed = json.loads(cli("audit", "checkpoint", "--json").stdout)
    assert signed["seq"] >= events[-1]["seq"]  # the head of the whole trail
    exported = sorted((cairn_home / "audit-checkpoints").glob("*/*.json"))  # <installation>/
    assert [p.name for p in exported] == [f"{signed['seq']:012d}.json"]
    report = json.loads(cli("audit", "verify", "--json").stdout)
    assert report["ok"] is True
    assert report["checkpoints"] == 1  # found in the database and exported: one checkpoint
    assert report["unsigned_events"] == 0


def test_audit_verify_fails_loudly_on_a_tampered_trail(runs: list[str], cairn_home: Path) -> None:
    import sqlite3

    cli("audit", "checkpoint")
    database = sqlite3.connect(cairn_home / "cairn.db")
    database.execute("DROP TRIGGER audit_events_no_update")
    database.execute("UPDATE audit_events SET actor = 'mallory' WHERE seq = 2")
    database.commit()
    database.close()
    done = cli("audit", "verify", ok=False)
    assert done.returncode == 1
    assert "TAMPERED at seq 2 (edited)" in done.stdout


def test_audit_log_refuses_a_bad_time(runs: list[str]) -> None:
    done = cli("audit", "log", "--since", "last tuesday", ok=False)
    assert done.returncode == 1
    assert "--since 'last tuesday': expected an ISO 8601 time" in done.stderr


def test_accounts_tokens_and_roles_from_the_command_line() -> None:
    cli("users", "add", "alice")
    cli("users", "add", "ci-bot", "--service")
    cli("projects", "add", "churn")
    cli("projects", "grant", "churn", "alice", "maintainer")
    made = json.loads(cli("tokens", "create", "--user", "ci-bot", "--json").stdout)
    assert made["token"].startswith(f"cairn_{made['id']}_")
    listed = json.loads(cli("tokens", "list", "--json").stdout)
    assert [t["id"] for t in listed] == [made["id"]]
    assert made["token"] not in cli("tokens", "list").stdout
    cli("tokens", "revoke", made["id"])
    assert json.loads(cli("tokens", "list", "--json").stdout)[0]["revoked_at"] is not None
    users = json.loads(cli("users", "list", "--json").stdout)
    assert [(u["name"], u["kind"]) for u in users] == [("alice", "user"), ("ci-bot", "service")]
    members = json.loads(cli("projects", "members", "churn", "--json").stdout)
    assert members == [{"user": "alice", "role": "maintainer"}]
    bad = cli("projects", "grant", "churn", "alice", "owner", ok=False)
    assert bad.returncode == 2  # a usage error
    assert "owner" in bad.stderr
    audited = json.loads(cli("audit", "log", "--json").stdout)
    assert [e["action"] for e in audited] == [
        "user.create",
        "user.create",
        "project.create",
        "project.set_role",
        "token.create",
        "token.revoke",
    ]


def test_accounts_through_a_server_are_decided_for_the_callers_token(tmp_path: Path) -> None:
    from cairn.stores.metadata.identity import IdentityStore
    from cairn.stores.metadata.sql import SqlMetadataStore

    db = f"sqlite:///{tmp_path / 'team.db'}"
    store = SqlMetadataStore(db)
    identity = IdentityStore(store.engine)
    identity.add_user("root", admin=True)
    identity.add_user("lead")
    identity.add_user("bob")
    identity.add_project("churn")
    identity.add_project("fraud")
    identity.set_role("churn", "lead", Role.ADMIN)
    root_token = identity.create_token("root", "t")[1]
    lead_token = identity.create_token("lead", "t")[1]
    store.close()
    with running_server(db, str(tmp_path / "artifacts"), auth=True) as base_url:
        as_lead = {"CAIRN_URI": base_url, "CAIRN_TOKEN": lead_token}
        as_root = {"CAIRN_URI": base_url, "CAIRN_TOKEN": root_token}
        cli("projects", "grant", "churn", "bob", "viewer", env=as_lead)  # a project admin
        members = json.loads(cli("projects", "members", "churn", "--json", env=as_lead).stdout)
        assert members == [{"user": "bob", "role": "viewer"}, {"user": "lead", "role": "admin"}]
        refused = cli("projects", "grant", "fraud", "bob", "viewer", env=as_lead, ok=False)
        assert refused.returncode == 1  # a project lead cannot see is one that is not there
        absent = cli("projects", "grant", "nope", "bob", "viewer", env=as_lead, ok=False)
        assert refused.stderr == absent.stderr.replace("nope", "fraud")
        refused = cli("users", "add", "eve", env=as_lead, ok=False)
        assert "only installation admins may" in refused.stderr
        assert "Traceback" not in refused.stderr
        made = json.loads(cli("tokens", "create", "--user", "lead", "--json", env=as_lead).stdout)
        listed = json.loads(cli("tokens", "list", "--json", env=as_lead).stdout)
        assert {t["user"] for t in listed} == {"lead"}  # only their own
        assert made["id"] in {t["id"] for t in listed}
        assert json.loads(cli("projects", "list", "--json", env=as_lead).stdout) == ["churn"]

        cli("users", "add", "eve", env=as_root)
        cli("users", "disable", "lead", env=as_root)
        refused = cli("projects", "members", "churn", env=as_lead, ok=False)
        assert "'lead' is disabled" in refused.stderr
        users = json.loads(cli("users", "list", "--json", env=as_root).stdout)
        assert [(u["name"], u["disabled"]) for u in users] == [
            ("bob", False), ("eve", False), ("lead", True), ("root", False),
        ]  # fmt: skip
        direct = cli("users", "list", "--json", "--db", db, env=as_lead)  # the database itself
        assert len(json.loads(direct.stdout)) == 4
    audited = json.loads(cli("audit", "log", "--db", db, "--json").stdout)
    by_actor = [(e["actor"], e["action"]) for e in audited if e["action"] != "auth.login"]
    assert ("lead", "project.set_role") in by_actor
    assert ("lead", "auth.denied") in by_actor
    assert ("root", "user.disable") in by_actor


def test_data_add_status_log_ls_and_checkout(tmp_path: Path) -> None:
    project = tmp_path / "project"
    images = project / "data" / "images"
    images.mkdir(parents=True)
    (project / ".cairn").mkdir()
    for i in range(5):
        (images / f"{i}.bin").write_bytes(bytes([i]) * 100)

    def data(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        return cli("data", *args, ok=ok, cwd=project)

    added = json.loads(
        data("add", "data/images", "--name", "images", "-m", "first", "--json").stdout
    )
    assert (added["ref"], added["files"], added["bytes"], added["created"]) == (
        "images@1", 5, 500, True,
    )  # fmt: skip
    assert "images:" in (project / "cairn.lock").read_text()
    clean = json.loads(data("status", "--json").stdout)
    assert [(s["name"], s["added"], s["modified"], s["deleted"]) for s in clean] == [
        ("images", [], [], [])
    ]
    (images / "0.bin").write_bytes(b"changed")
    assert "1 modified" in data("status").stdout
    refused = data("checkout", "images@1", ok=False)
    assert refused.returncode == 1
    assert "would overwrite local changes to 0.bin" in refused.stderr
    data("add", "data/images", "--name", "images", "-m", "second")
    changes = json.loads(data("diff", "images@1", "images@2", "--json").stdout)
    assert (changes["modified"], changes["added"], changes["unchanged"]) == (["0.bin"], [], 4)
    assert "1 modified, 4 unchanged" in data("diff", "images@1", "images@2").stdout
    versions = json.loads(data("log", "images", "--json").stdout)
    assert [(v["version"], v["message"]) for v in versions] == [(2, "second"), (1, "first")]
    listed = json.loads(data("ls", "images@1", "--json").stdout)
    assert [f["path"] for f in listed] == [f"{i}.bin" for i in range(5)]
    out = data("checkout", "images@1", "--to", str(tmp_path / "copy")).stdout
    assert "5 written" in out
    assert (tmp_path / "copy" / "0.bin").read_bytes() == bytes([0]) * 100
    assert [d["dataset"] for d in json.loads(data("list", "--json").stdout)] == ["images"]
    swept = json.loads(data("gc", "--grace-minutes", "0", "--json").stdout)
    assert (swept["removed"], swept["dry_run"]) == (0, False)  # every object is referenced
    assert swept["kept"] >= 4
    bad = data("ls", "images@9", ok=False)
    assert "data version images@9 not found" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_sdk_gets_a_data_version_and_a_run_records_it_as_input(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    (project / ".cairn").mkdir()
    (project / "data" / "customers.csv").write_text("id,age\n1,30\n")
    cli("data", "add", "data/customers.csv", "--name", "customers", cwd=project)
    (project / "data" / "customers.csv").write_text("id,age\n1,31\n")
    cli("data", "add", "data/customers.csv", "--name", "customers", cwd=project)
    script = textwrap.dedent(
        """
        import json, cairn
        first = cairn.data.get("customers@1")
        with cairn.start_run(experiment="churn") as run:
            used = [run.log_input("customers@1"), run.log_input("customers")]
        inputs = cairn.sdk.session().metadata.get_run_inputs(run.id)
        print(json.dumps({"text": first.read_text(), "used": used, "inputs": inputs}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=project, check=True
    )
    found = json.loads(done.stdout)
    assert found == {
        "text": "id,age\n1,30\n",
        "used": ["customers@1", "customers@2"],
        "inputs": ["customers@1", "customers@2"],
    }
    events = json.loads(
        cli("audit", "log", "--action", "run.log_input", "--json", cwd=project).stdout
    )
    assert len(events) == 2


def test_data_push_and_pull_through_a_remote(tmp_path: Path, cairn_home: Path) -> None:
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    (project / ".cairn").mkdir()
    (project / "data" / "c.csv").write_text("id,age\n1,30\n")

    def data(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        return cli("data", *args, ok=ok, cwd=project)

    no_remote = data("push", ok=False)
    assert "no remote given and no default set" in no_remote.stderr
    unknown = data("push", "--remote", "origin", ok=False)
    assert "remote 'origin' is not configured" in unknown.stderr
    data("remote", "add", "origin", str(tmp_path / "remote"), "--default")
    nothing = data("push", ok=False)
    assert "no data versions given and none tracked here" in nothing.stderr
    data("add", "data/c.csv", "--name", "customers")
    remotes = json.loads(data("remote", "list", "--json").stdout)
    assert remotes == [{"name": "origin", "url": str(tmp_path / "remote"), "default": True}]
    assert "pushed 3 objects" in data("push").stdout  # a bundle, a listing, a profile
    assert "pushed 0 objects" in data("push").stdout
    shutil.rmtree(cairn_home / "artifacts")  # this machine loses its copy
    (project / "data" / "c.csv").unlink()
    pulled = data("pull").stdout
    assert "fetched 3 objects" in pulled
    assert (project / "data" / "c.csv").read_text() == "id,age\n1,30\n"


@pytest.mark.s3
def test_data_through_a_server_with_an_s3_remote(tmp_path: Path, s3_endpoint: S3Endpoint) -> None:
    """Every data command with CAIRN_URI set: the server records the versions and keeps
    the objects, decides each call for the caller's token, and pushes go to S3."""
    from cairn.stores.metadata.identity import IdentityStore
    from cairn.stores.metadata.sql import SqlMetadataStore

    db = f"sqlite:///{tmp_path / 'team.db'}"
    store = SqlMetadataStore(db)
    identity = IdentityStore(store.engine)
    for name, role in (("ana", Role.CONTRIBUTOR), ("vic", Role.VIEWER)):
        identity.add_user(name)
        identity.set_role("default", name, role)
    tokens = {name: identity.create_token(name, "t")[1] for name in ("ana", "vic")}
    store.close()
    remote = f"s3://{s3_endpoint.bucket}/team-{os.getpid()}"
    s3_env = {**S3_ENV, "AWS_ENDPOINT_URL_S3": s3_endpoint.endpoint_url}
    ana, bob = tmp_path / "ana", tmp_path / "bob"
    for folder in (ana, bob):
        (folder / "data").mkdir(parents=True)
    (ana / "data" / "c.csv").write_text("id,age\n1,30\n2,41\n")

    with running_server(db, str(tmp_path / "server-objects"), auth=True) as base_url:

        def data(*args: str, who: str = "ana", cwd: Path = ana, ok: bool = True) -> Any:
            env = {**s3_env, "CAIRN_URI": base_url, "CAIRN_TOKEN": tokens[who]}
            return cli("data", *args, env=env, cwd=cwd, ok=ok)

        added = json.loads(data("add", "data/c.csv", "--name", "customers", "--json").stdout)
        assert (added["ref"], added["created_by"], added["files"]) == ("customers@1", "ana", 1)
        assert "customers@1 (data/c.csv): up to date" in data("status").stdout
        (ana / "data" / "c.csv").write_text("id,age\n1,30\n2,42\n3,19\n")
        assert "1 modified" in data("status").stdout
        data("add", "data/c.csv", "--name", "customers", "-m", "more rows")
        changed = json.loads(data("diff", "customers@1", "customers@2", "--json").stdout)
        assert changed["modified"] == ["c.csv"]
        assert [(t["rows_before"], t["rows_after"]) for t in changed["tables"]] == [(2, 3)]
        profiled = json.loads(data("profile", "customers@2", "--json", who="vic").stdout)
        age = profiled["c.csv"]["columns"][1]
        assert (profiled["c.csv"]["rows"], age["name"], age["min"], age["max"]) == (
            3, "age", 19, 42,
        )  # fmt: skip
        shown = data("profile", "customers@2", who="vic").stdout
        assert "customers@2 c.csv: 3 rows" in shown
        assert "int64" in shown
        logged = json.loads(data("log", "customers", "--json", who="vic").stdout)
        assert [(v["version"], v["message"]) for v in logged] == [(2, "more rows"), (1, "")]
        assert [d["ref"] for d in json.loads(data("list", "--json", who="vic").stdout)] == [
            "customers@2"
        ]
        refused = data("add", "data/c.csv", "--name", "other", who="vic", ok=False)
        assert "vic may not store artifacts: it needs the 'write' permission" in refused.stderr
        assert "Traceback" not in refused.stderr

        data("remote", "add", "origin", remote, "--default")
        pushed = data("push", "customers@1", "customers@2").stdout
        assert "pushed 6 objects" in pushed  # per version: a bundle, a listing, a profile
        assert "pushed 0 objects" in data("push", "customers@1", "customers@2").stdout

        # Another working copy on the same server: checkout comes from the server's store.
        out = data("checkout", "customers@1", cwd=bob).stdout
        assert "1 written" in out
        assert (bob / "data" / "c.csv").read_text() == "id,age\n1,30\n2,41\n"
        script = "import cairn; print(cairn.data.get('customers@2').read_text(), end='')"
        got = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, cwd=bob,
            env={**os.environ, "CAIRN_URI": base_url, "CAIRN_TOKEN": tokens["vic"]},
        )  # fmt: skip
        assert got.stdout == "id,age\n1,30\n2,42\n3,19\n", got.stderr
        gc = data("gc", ok=False)
        assert "runs where the objects are stored" in gc.stderr

    # The server's store can be rebuilt from the S3 remote alone.
    shutil.rmtree(tmp_path / "server-objects")
    (ana / "data" / "c.csv").unlink()
    direct = {**s3_env, "CAIRN_ARTIFACTS": str(tmp_path / "server-objects")}
    fetched = cli("data", "pull", "--remote", "origin", "--db", db, env=direct, cwd=ana).stdout
    assert "fetched 3 objects" in fetched  # customers@2, which ana's cairn.lock names
    assert (ana / "data" / "c.csv").read_text() == "id,age\n1,30\n2,42\n3,19\n"
    created = json.loads(
        cli("audit", "log", "--db", db, "--action", "data.version.create", "--json").stdout
    )
    assert [(e["actor"], e["object_id"]) for e in created] == [
        ("ana", "customers@1"), ("ana", "customers@2"),
    ]  # fmt: skip

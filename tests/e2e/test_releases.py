"""Release governance from the command line: embedded, and through a server with two
people in different roles — promote, gate, approve, deployment history, rollback, and
"what ran then"."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

import cairn
from cairn.core.actor import local_user
from cairn.core.model import ModelVersion
from cli_process import cairn_cli

X, Y = load_breast_cancer(return_X_y=True)
POLICY = """
gates:
  - metric: val_auc
    min: 0.80
  - champion: production
    metric: val_auc
    max_regression: 0.01
  - no_unsafe_pickle: true
approvals:
  required: 1
  role: approver
"""


def _logged(auc: float) -> ModelVersion:
    with cairn.start_run(experiment="churn") as run:
        run.log_metric("val_auc", auc)
        model = LogisticRegression(max_iter=5000).fit(X, Y)
        return run.log_model(model, name="churn", input_example=X[:3])


def _json(*args: str, ok: bool = True) -> Any:
    return json.loads(cairn_cli(*args, "--json", ok=ok).stdout)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def test_gate_check_for_ci_and_a_cycle_embedded(tmp_path: Path) -> None:
    policy = tmp_path / "production.yaml"
    policy.write_text(POLICY.replace("required: 1\n  role: approver", "required: 1\n  "
                                     "not_requester: false"))  # fmt: skip
    cairn_cli("envs", "create", "production", "--policy", str(policy))
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00gates")
    refused = cairn_cli("envs", "create", "qa", "--policy", str(binary), ok=False)
    assert "not a UTF-8 text file" in refused.stderr
    weak, good = _logged(0.7), _logged(0.9)
    failed = cairn_cli("gate", "check", weak.ref, "--env", "production", ok=False)
    assert failed.returncode == 1
    assert "FAIL metric val_auc >= 0.8: val_auc = 0.7, outside [0.8, inf]" in failed.stdout
    report = _json("gate", "check", weak.ref, "--env", "production", ok=False)
    assert report["passed"] is False
    assert [g["passed"] for g in report["gates"]] == [False, True, True]
    assert _json("gate", "check", good.ref, "--env", "production")["passed"] is True
    assert _json("requests", "list") == []  # a check records nothing
    blocked = cairn_cli("promote", weak.ref, "--to", "production", "--reason", "try", ok=False)
    assert "blocked" in blocked.stdout
    request = _json("promote", good.ref, "--to", "production", "--reason", "Q4 retrain")
    assert request["state"] == "waiting"
    done = _json("approve", request["id"][:8], "--comment", "one person runs it all here")
    assert done["state"] == "deployed"
    [environment] = _json("envs", "list")
    assert environment["deployed"] == {"churn": good.version}
    better = _logged(0.91)
    second = _json("promote", better.ref, "--to", "production", "--reason", "better")
    _json("approve", second["id"])
    rolled = _json("rollback", "production", "--model", "churn", "--reason", "latency")
    assert (rolled["version"], rolled["previous"]) == (good.version, better.version)
    history = _json("envs", "history", "production", "--model", "churn")
    assert [(d["action"], d["version"]) for d in history] == [
        ("rollback", good.version),
        ("promote", better.version),
        ("promote", good.version),
    ]
    before_rollback = _iso(history[0]["at"] - 1)
    then = _json("envs", "show", "production", "--at", before_rollback)
    assert [(d["model"], d["version"]) for d in then["deployed"]] == [("churn", better.version)]
    shown = cairn_cli("requests", "show", request["id"]).stdout
    assert "approved by local:" in shown
    assert "pass metric val_auc >= 0.8" in shown
    refused = cairn_cli("models", "alias", "set", "churn", "production", "2", ok=False)
    assert "cairn promote MODEL/VERSION --to production" in refused.stderr


def test_approving_ones_own_request_is_refused_in_one_line(tmp_path: Path) -> None:
    cairn_cli("envs", "create", "qa")  # the default policy: one approval, not by the requester
    request = _json("promote", _logged(0.9).ref, "--to", "qa", "--reason", "try it")
    refused = cairn_cli("approve", request["id"][:8], ok=False)
    assert refused.returncode == 1
    assert refused.stdout == ""  # no "approved by …"
    [line] = refused.stderr.splitlines()
    assert line.startswith(f"error: {local_user()} may not approve request "
                           f"{request['id'][:8]} (churn/1 → qa): approvals must come from "
                           f"someone other than who requested it (local:")  # fmt: skip
    assert "an approver or an admin of project 'default' who did not" in line
    shown = _json("requests", "show", request["id"])
    assert (shown["state"], shown["approvals"]) == ("waiting", [])


@contextmanager
def _as(token: str, base_url: str) -> Iterator[None]:
    os.environ.update({"CAIRN_URI": base_url, "CAIRN_TOKEN": token})
    try:
        yield
    finally:
        for name in ("CAIRN_URI", "CAIRN_TOKEN"):
            os.environ.pop(name, None)


def test_the_release_cycle_through_a_server_with_two_people(
    tmp_path: Path, cairn_home: Path
) -> None:
    from cairn.core.access import Role
    from cairn.core.identity import DEFAULT_PROJECT
    from cairn.stores.metadata.audit import AuditLog, EventQuery
    from cairn.stores.metadata.identity import IdentityStore
    from cairn.stores.metadata.sql import SqlMetadataStore
    from server_process import running_server

    db = f"sqlite:///{tmp_path / 'team.db'}"
    seed = SqlMetadataStore(db)
    accounts = IdentityStore(seed.engine)
    accounts.add_user("root", admin=True)
    for name, role in {"mia": Role.MAINTAINER, "ana": Role.APPROVER}.items():
        accounts.add_user(name)
        accounts.set_role(DEFAULT_PROJECT, name, role)
    root, mia, ana = (accounts.create_token(name, "t")[1] for name in ("root", "mia", "ana"))
    seed.close()
    policy = tmp_path / "production.yaml"
    policy.write_text(POLICY)
    with running_server(db, str(tmp_path / "server-objects"), auth=True) as base_url:
        with _as(root, base_url):
            cairn_cli("envs", "create", "production", "--policy", str(policy))
        with _as(mia, base_url):
            refused = cairn_cli("envs", "create", "qa", ok=False)
            assert "only installation admins" in refused.stderr
            first, second = _logged(0.9), _logged(0.905)
            request = _json("promote", first.ref, "--to", "production", "--reason", "launch")
            assert (request["state"], request["requester"]) == ("waiting", "mia")
            refused = cairn_cli("approve", request["id"], ok=False)
            assert "'approve' permission" in refused.stderr
        with _as(ana, base_url):
            refused = cairn_cli("promote", second.ref, "--to", "production", "--reason", "x",
                                ok=False)  # fmt: skip
            assert "'manage' permission" in refused.stderr
            done = _json("approve", request["id"][:8], "--comment", "reviewed the card")
            assert (done["state"], done["decided_by"]) == ("deployed", "ana")
            assert [a["role"] for a in done["approvals"]] == ["approver"]
        time.sleep(0.01)
        with _as(mia, base_url):
            again = _json("promote", second.ref, "--to", "production", "--reason", "retrain")
            champion = next(g for g in again["gates"] if "below the version in" in g["gate"])
            assert champion["evidence"]["champion_version"] == first.ref
        with _as(ana, base_url):
            _json("approve", again["id"])
            refused = cairn_cli("rollback", "production", "--model", "churn", "--reason", "no",
                                ok=False)  # fmt: skip
            assert "'manage' permission" in refused.stderr
        with _as(mia, base_url):
            back = _json("rollback", "production", "--model", "churn", "--reason", "p99 latency")
            assert (back["version"], back["previous"], back["by"]) == (1, 2, "mia")
            history = _json("envs", "history", "production")
            assert [(d["action"], d["version"], d["by"]) for d in history] == [
                ("rollback", 1, "mia"),
                ("promote", 2, "ana"),
                ("promote", 1, "ana"),
            ]
            assert history[1]["request_id"] == again["id"]
            then = _json("envs", "show", "production", "--at", _iso(history[0]["at"] - 1))
            assert [(d["model"], d["version"]) for d in then["deployed"]] == [("churn", 2)]
            now = cairn_cli("envs", "show", "production").stdout
            assert "runs: churn/1" in now
        with _as(root, base_url):
            listed = _json("requests", "list", "--env", "production")
            assert [r["state"] for r in listed] == ["deployed", "deployed"]
            own = _json("promote", second.ref, "--to", "production", "--reason", "mine")
            refused = cairn_cli("approve", own["id"], ok=False)  # over REST: a 403
            assert "error: root may not approve request" in refused.stderr
            assert "someone other than who requested it (root)" in refused.stderr
    assert not (cairn_home / "cairn.db").exists()  # everything went to the server
    store = SqlMetadataStore(db)
    events = AuditLog(store.engine).events(EventQuery(object_type="environment"))
    store.close()
    said = [
        (e.content.action, e.content.actor) for e in events if e.content.object_id == "production"
    ]
    assert said == [
        ("environment.create", "root"),
        ("release.promote", "ana"),
        ("release.promote", "ana"),
        ("release.rollback", "mia"),
    ]


def test_a_server_posts_signed_release_events_to_webhooks(tmp_path: Path) -> None:
    from cairn.stores.metadata.identity import IdentityStore
    from cairn.stores.metadata.sql import SqlMetadataStore
    from server_process import running_server
    from webhook_receiver import receiving

    db = f"sqlite:///{tmp_path / 'team.db'}"
    seed = SqlMetadataStore(db)
    accounts = IdentityStore(seed.engine)
    accounts.add_user("root", admin=True)
    root = accounts.create_token("root", "t")[1]
    seed.close()
    secret = "a-secret-shared-with-the-receiver"
    with (
        receiving() as (url, handler),
        running_server(db, str(tmp_path / "server-objects"), auth=True) as base_url,
        _as(root, base_url),
    ):
        cairn_cli("envs", "create", "staging", "--policy", _auto(tmp_path))
        os.environ["CAIRN_WEBHOOK_SECRET"] = secret
        try:
            hook = _json("webhooks", "add", url, "--env", "staging")
        finally:
            os.environ.pop("CAIRN_WEBHOOK_SECRET")
        assert "secret" not in hook  # never shown again
        handler.answers[:] = [500]  # the first post fails; the server tries again
        version = _logged(0.9)
        request = _json("promote", version.ref, "--to", "staging", "--reason", "nightly")
        assert request["state"] == "deployed"
        handler.wait_for(2)
        headers, body = handler.received[-1]
        signed = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        assert headers["X-Cairn-Signature-256"] == signed
        event = json.loads(body)
        assert (event["event"], event["request_id"], event["by"]) == (
            "release.promote", request["id"], "root")  # fmt: skip
        assert [h["url"] for h in _json("webhooks", "list")] == [url]


def _auto(folder: Path) -> str:
    policy = folder / "staging.yaml"
    policy.write_text("auto_promote: true\n")
    return str(policy)

"""Who a run belongs to is who started it, and what a request names must be the caller's
to see.

On a server, a run's user is the account whose token starts it: a body naming someone
else is refused (403, naming the field), a body naming nobody gets the caller. Embedded,
it is the account the process runs as, whatever ``$USER`` says. A run's parent must be a
run the caller may read: one in a project it may not read is refused exactly as a run
that does not exist, so the answer tells nothing of other projects.
"""

from __future__ import annotations

import os
import pwd
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

import cairn
from cairn.client.http import HttpArtifactStore, HttpMetadataStore
from cairn.core.access import Role
from cairn.stores.metadata.identity import IdentityStore
from cairn.stores.metadata.sql import SqlMetadataStore
from cairn.tracking.service import RunStart, TrackingService
from server_process import running_server

OWN, OTHER = "churn", "fraud"


@dataclass
class Server:
    base_url: str
    tokens: dict[str, str]  # account -> token
    experiments: dict[str, str]  # project -> experiment id

    def client(self, account: str) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[account]}"}
        return httpx.Client(base_url=f"{self.base_url}/api/v1", headers=headers, timeout=30)

    def new_run(self, project: str = OWN, **fields: Any) -> dict[str, Any]:
        return {"experiment_id": self.experiments[project], "name": "r", "start_time": 1, **fields}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """alice contributes to churn, bob to fraud; root is an installation admin."""
    folder = tmp_path_factory.mktemp("identity")
    db = f"sqlite:///{folder / 'c.db'}"
    store = SqlMetadataStore(db)
    identity = IdentityStore(store.engine)
    tokens = {}
    identity.add_user("root", admin=True)
    tokens["root"] = identity.create_token("root", "t")[1]
    for account, project in (("alice", OWN), ("bob", OTHER)):
        identity.add_project(project)
        identity.add_user(account)
        identity.set_role(project, account, Role.CONTRIBUTOR)
        tokens[account] = identity.create_token(account, "t")[1]
    experiments = {p: store.create_experiment(f"e-{p}", p).id for p in (OWN, OTHER)}
    store.close()
    with running_server(db, str(folder / "artifacts"), auth=True) as base_url:
        yield Server(base_url, tokens, experiments)


def _runs_in(server: Server, project: str) -> int:
    with server.client("root") as root:
        body = {"experiment_ids": [server.experiments[project]]}
        return len(root.post("/runs/search", json=body).json()["runs"])


# who a run belongs to


@pytest.mark.parametrize("account", ["alice", "root"])
def test_a_run_cannot_be_started_as_someone_else(server: Server, account: str) -> None:
    """Not even by an admin: the trail and the run must agree on who did it."""
    before = _runs_in(server, OWN)
    with server.client(account) as client:
        answer = client.post("/runs", json=server.new_run(user="bob"))
    assert answer.status_code == 403
    error = answer.json()["error"]
    assert error["code"] == "PERMISSION_DENIED"
    assert error["message"].startswith(f"user: {account} may not start a run as 'bob'")
    assert _runs_in(server, OWN) == before


def test_a_recorded_run_cannot_name_someone_else_either(server: Server) -> None:
    record = {"run": server.new_run(user="bob"), "status": "FINISHED", "end_time": 2}
    before = _runs_in(server, OWN)
    with server.client("alice") as alice:
        answer = alice.post("/runs/record", json={"runs": [record]})
    assert answer.status_code == 403
    assert answer.json()["error"]["message"].startswith("user: alice may not")
    assert _runs_in(server, OWN) == before


@pytest.mark.parametrize("user", [None, "alice"], ids=["left out", "its own name"])
def test_a_run_belongs_to_the_account_whose_token_starts_it(
    server: Server, user: str | None
) -> None:
    fields = {} if user is None else {"user": user}
    with server.client("alice") as alice:
        created = alice.post("/runs", json=server.new_run(**fields))
        recorded = alice.post("/runs/record", json={"runs": [
            {"run": server.new_run(**fields), "status": "FINISHED", "end_time": 2}]})  # fmt: skip
    assert created.status_code == 201, created.text
    assert created.json()["user"] == "alice"
    assert [run["user"] for run in recorded.json()["runs"]] == ["alice"]


def test_the_sdk_through_a_server_records_the_token_account(server: Server) -> None:
    """The client names nobody: the process's own account (here not 'alice') is not
    the client's to claim on a server."""
    metadata = HttpMetadataStore(server.base_url, server.tokens["alice"])
    artifacts = HttpArtifactStore(server.base_url, server.tokens["alice"])
    try:
        service = TrackingService(metadata, artifacts, "e-churn")
        run = service.create_run(RunStart())
    finally:
        metadata.close()
        artifacts.close()
    assert run.user == "alice"
    assert pwd.getpwuid(os.getuid()).pw_name != "alice"


def test_embedded_runs_belong_to_the_process_account_not_to_user(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``$USER`` and ``$LOGNAME`` are whatever whoever starts the process says."""
    monkeypatch.setenv("USER", "mallory")
    monkeypatch.setenv("LOGNAME", "mallory")
    with cairn.start_run() as run:
        pass
    assert run.info.user == pwd.getpwuid(os.getuid()).pw_name


# what a run may name as its parent


def _parent_answer(server: Server, parent_id: str) -> tuple[int, str]:
    with server.client("alice") as alice:
        answer = alice.post("/runs", json=server.new_run(parent_id=parent_id))
    return answer.status_code, answer.text.replace(parent_id, "<id>")


def test_a_parent_in_a_project_the_caller_cannot_read_is_as_if_it_did_not_exist(
    server: Server,
) -> None:
    with server.client("bob") as bob:
        hidden = bob.post("/runs", json=server.new_run(OTHER)).json()["id"]
    before = _runs_in(server, OWN)
    refused = _parent_answer(server, hidden)
    assert refused == _parent_answer(server, uuid.uuid4().hex)
    assert refused[0] == 404
    assert "parent run '<id>' not found" in refused[1]
    assert _runs_in(server, OWN) == before


def test_a_parent_the_caller_may_read_is_recorded(server: Server) -> None:
    with server.client("alice") as alice:
        parent = alice.post("/runs", json=server.new_run()).json()["id"]
        child = alice.post("/runs", json=server.new_run(parent_id=parent))
    assert child.status_code == 201, child.text
    assert child.json()["parent_id"] == parent

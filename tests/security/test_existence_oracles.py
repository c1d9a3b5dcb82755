"""What a caller may not read does not exist for it.

Project ``alpha`` holds a run (with a child, artifacts and metrics), an experiment, a
dataset, a model with an alias and a card, a promotion request and an account's token.
Accounts of project ``beta``, one per role, name each of them on every route that takes a
name or an id — reads, writes, id prefixes, references resolved inside a request — and
then name something that does not exist in its place: the two answers must be the same,
status and body, but for the name or id asked about. So no answer tells a beta account
that alpha's things exist, names project alpha, or suggests alpha's models.

What can still be learnt is that a name is taken: experiments, datasets and models are
named uniquely across the installation. Creating one under a name alpha holds is refused,
and the refusal names neither alpha nor anything of what its name holds.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import blake3
import httpx
import pytest

from cairn.core.access import Role
from cairn.core.artifact import ArtifactEntry
from cairn.core.data import DataKind, NewDataVersion
from cairn.core.model import NewModelVersion, PackageFile
from cairn.core.run import NewRun
from cairn.releases.service import load_policy
from cairn.releases.workflow import open_request
from cairn.stores.metadata.data import SqlDataCatalog
from cairn.stores.metadata.identity import IdentityStore
from cairn.stores.metadata.models import SqlModelRegistry
from cairn.stores.metadata.releases import SqlReleaseLedger
from cairn.stores.metadata.sql import SqlMetadataStore
from server_process import running_server

OWNER, CALLER = "alpha", "beta"  # alpha holds the things; beta's accounts ask for them
API = "/api/v1"


def _digest(content: bytes) -> str:
    return f"blake3:{blake3.blake3(content).hexdigest()}"


@dataclass
class World:
    db: str
    base_url: str
    tokens: dict[str, str]  # by account
    alpha: dict[str, str]  # what alpha holds, by what it is
    beta: dict[str, str]  # beta's own experiment and runs


def _package(name: str) -> NewModelVersion:
    files = (PackageFile("model.pkl", _digest(name.encode()), 9),)
    return NewModelVersion(name, _digest(f"{name} manifest".encode()), "sklearn", files, {})


def _things(store: SqlMetadataStore, identity: IdentityStore) -> dict[str, str]:
    """Alpha's things, recorded by a trusted caller."""
    experiment = store.create_experiment("exp-a", OWNER)
    run = store.create_run(NewRun(experiment.id, "train", 1, "u")).id
    child = store.create_run(NewRun(experiment.id, "fold", 1, "u", parent_id=run)).id
    store.add_artifacts(run, [ArtifactEntry("a.txt", _digest(b"report"), 6)])
    store.log_batch(run, [("loss", 0.5, 1, 1)])
    data = _digest(b"customers")
    SqlDataCatalog(store.engine).add_version(
        NewDataVersion("customers", data, DataKind.FILE, "c.csv", 1, 9, project=OWNER)
    )
    store.log_inputs(run, ["customers@1"])
    registry = SqlModelRegistry(store.engine)
    registry.register_version(_package("retention"), OWNER)
    registry.set_alias("retention", "champion", 1)
    ledger = SqlReleaseLedger(store.engine)
    staging = ledger.create_environment("staging", "", load_policy(""))
    request = open_request(ledger, "retention", 1, "staging", "try", [], staging.policy.digest)
    identity.add_user("alpha-owner")
    identity.set_role(OWNER, "alpha-owner", Role.CONTRIBUTOR)
    token = identity.create_token("alpha-owner", "laptop")[0].id
    return {"experiment": experiment.id, "run": run, "child": child, "data": data,
            "request": request.id, "token": token}  # fmt: skip


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("oracles")
    db = f"sqlite:///{folder / 'c.db'}"
    store = SqlMetadataStore(db)
    identity = IdentityStore(store.engine)
    tokens = {}
    for project in (OWNER, CALLER):
        identity.add_project(project)
    for role in Role:
        name = f"beta-{role.value}"
        identity.add_user(name)
        identity.set_role(CALLER, name, role)
        tokens[name] = identity.create_token(name, "t")[1]
    alpha = _things(store, identity)
    experiment = store.create_experiment("exp-b", CALLER)
    runs = [store.create_run(NewRun(experiment.id, f"r{i}", i, "u")).id for i in (1, 2)]
    SqlModelRegistry(store.engine).register_version(_package("scoring"), CALLER)
    store.close()
    with running_server(db, str(folder / "objects"), auth=True) as base_url:
        beta = {"experiment": experiment.id, "run": runs[0], "newer run": runs[1]}
        yield World(db, base_url, tokens, alpha, beta)


@dataclass(frozen=True)
class Cell:
    name: str
    real: Callable[[dict[str, str]], str]  # alpha's, from what it holds
    made_up: str  # of the same shape, naming nothing
    request: Callable[[httpx.Client, World, str], httpx.Response]


RUN, EXPERIMENT = (lambda a: a["run"]), (lambda a: a["experiment"])
NO_RUN, NO_EXPERIMENT = "0" * 32, "f" * 32


def _record(experiment_id: str) -> dict[str, Any]:
    new = {"experiment_id": experiment_id, "name": "r", "start_time": 1}
    return {"runs": [{"run": new, "status": "FINISHED", "end_time": 2}]}


CELLS = [
    # runs, by id or id prefix
    Cell("get run", RUN, NO_RUN, lambda c, w, x: c.get(f"{API}/runs/{x}")),
    Cell("resolve a run id prefix", lambda a: a["run"][:8], "0" * 8,
         lambda c, w, x: c.get(f"{API}/runs/resolve", params={"ref": x})),
    Cell("list artifacts", RUN, NO_RUN, lambda c, w, x: c.get(f"{API}/runs/{x}/artifacts")),
    Cell("download an artifact", RUN, NO_RUN, lambda c, w, x: c.get(
        f"{API}/runs/{x}/artifacts/file", params={"path": "a.txt"})),
    Cell("run inputs", RUN, NO_RUN, lambda c, w, x: c.get(f"{API}/runs/{x}/inputs")),
    Cell("run lineage", RUN, NO_RUN, lambda c, w, x: c.get(f"{API}/runs/{x}/lineage")),
    Cell("metric history", RUN, NO_RUN, lambda c, w, x: c.get(
        f"{API}/runs/{x}/metrics/history", params={"key": "loss"})),
    Cell("log a batch", RUN, NO_RUN, lambda c, w, x: c.post(
        f"{API}/runs/{x}/batch", json={"params": {"lr": "0.1"}})),
    Cell("add artifacts", RUN, NO_RUN, lambda c, w, x: c.post(
        f"{API}/runs/{x}/artifacts", json={"entries": []})),
    Cell("log inputs", RUN, NO_RUN, lambda c, w, x: c.post(
        f"{API}/runs/{x}/inputs", json={"refs": []})),
    Cell("log lineage", RUN, NO_RUN, lambda c, w, x: c.post(
        f"{API}/runs/{x}/lineage", json={"used": []})),
    Cell("end a run", RUN, NO_RUN, lambda c, w, x: c.post(
        f"{API}/runs/{x}/end", json={"status": "FINISHED", "end_time": 2})),
    Cell("delete a run", RUN, NO_RUN, lambda c, w, x: c.delete(f"{API}/runs/{x}")),
    Cell("restore a run", RUN, NO_RUN, lambda c, w, x: c.post(f"{API}/runs/{x}/restore")),
    Cell("start a child run", RUN, NO_RUN, lambda c, w, x: c.post(f"{API}/runs", json={
        "experiment_id": w.beta["experiment"], "name": "c", "start_time": 1, "parent_id": x})),
    Cell("walk from a run", RUN, NO_RUN, lambda c, w, x: c.get(
        f"{API}/lineage/walk", params={"kind": "run", "id": x})),
    # experiments
    Cell("get experiment", EXPERIMENT, NO_EXPERIMENT, lambda c, w, x: c.get(
        f"{API}/experiments/{x}")),
    Cell("experiment by name", lambda a: "exp-a", "exp-z", lambda c, w, x: c.get(
        f"{API}/experiments/by-name", params={"name": x})),
    Cell("search an experiment", EXPERIMENT, NO_EXPERIMENT, lambda c, w, x: c.post(
        f"{API}/runs/search", json={"experiment_ids": [x]})),
    Cell("start a run", EXPERIMENT, NO_EXPERIMENT, lambda c, w, x: c.post(
        f"{API}/runs", json={"experiment_id": x, "name": "r", "start_time": 1})),
    Cell("record a run", EXPERIMENT, NO_EXPERIMENT, lambda c, w, x: c.post(
        f"{API}/runs/record", json=_record(x))),
    # projects
    Cell("create an experiment", lambda a: OWNER, "gamma", lambda c, w, x: c.post(
        f"{API}/experiments", json={"name": "exp-new", "project": x})),
    Cell("list members", lambda a: OWNER, "gamma", lambda c, w, x: c.get(
        f"{API}/projects/{x}/members")),
    Cell("give a role", lambda a: OWNER, "gamma", lambda c, w, x: c.put(
        f"{API}/projects/{x}/members/beta-viewer", json={"role": "viewer"})),
    Cell("take a role away", lambda a: OWNER, "gamma", lambda c, w, x: c.delete(
        f"{API}/projects/{x}/members/beta-viewer")),
    # datasets and data versions: by number, the newest, a digest prefix
    Cell("list data versions", lambda a: "customers", "clients", lambda c, w, x: c.get(
        f"{API}/datasets/{x}/versions")),
    Cell("get a data version", lambda a: "customers", "clients", lambda c, w, x: c.get(
        f"{API}/datasets/{x}/versions/1")),
    Cell("get the newest data version", lambda a: "customers", "clients", lambda c, w, x: c.get(
        f"{API}/datasets/{x}/versions/latest")),
    Cell("get a data version by digest", lambda a: a["data"][7:19], "0" * 12,
         lambda c, w, x: c.get(f"{API}/datasets/customers/versions/{x}")),
    Cell("use a data version", lambda a: "customers@1", "clients@1", lambda c, w, x: c.post(
        f"{API}/runs/{w.beta['run']}/inputs", json={"refs": [x]})),
    Cell("use the newest data version", lambda a: "customers", "clients", lambda c, w, x: c.post(
        f"{API}/runs/{w.beta['run']}/inputs", json={"refs": [x]})),
    Cell("use a data version by digest", lambda a: f"customers@{a['data'][7:19]}",
         "customers@000000000000", lambda c, w, x: c.post(
             f"{API}/runs/{w.beta['run']}/inputs", json={"refs": [x]})),
    Cell("walk from a data version", lambda a: "customers@1", "clients@1", lambda c, w, x: c.get(
        f"{API}/lineage/walk", params={"kind": "data_version", "id": x})),
    # models, by name, version or alias
    Cell("get a model", lambda a: "retention", "attrition", lambda c, w, x: c.get(
        f"{API}/models/{x}")),
    Cell("list model versions", lambda a: "retention", "attrition", lambda c, w, x: c.get(
        f"{API}/models/{x}/versions")),
    Cell("resolve a version", lambda a: "retention/1", "attrition/1", lambda c, w, x: c.get(
        f"{API}/models/resolve", params={"ref": x})),
    Cell("resolve an alias", lambda a: "retention@champion", "attrition@champion",
         lambda c, w, x: c.get(f"{API}/models/resolve", params={"ref": x})),
    Cell("resolve a missing version", lambda a: "retention/7", "attrition/7",
         lambda c, w, x: c.get(f"{API}/models/resolve", params={"ref": x})),
    Cell("get a card", lambda a: "retention", "attrition", lambda c, w, x: c.get(
        f"{API}/models/{x}/versions/1/card")),
    Cell("set a card", lambda a: "retention", "attrition", lambda c, w, x: c.put(
        f"{API}/models/{x}/versions/1/card", json={"intended_use": "x"})),
    Cell("set an alias", lambda a: "retention", "attrition", lambda c, w, x: c.put(
        f"{API}/models/{x}/aliases/best", json={"version": 1})),
    Cell("delete an alias", lambda a: "retention", "attrition", lambda c, w, x: c.delete(
        f"{API}/models/{x}/aliases/champion")),
    Cell("walk from a model version", lambda a: "retention/1", "attrition/1",
         lambda c, w, x: c.get(
             f"{API}/lineage/walk", params={"kind": "model_version", "id": x})),
    # releases
    Cell("check the gates", lambda a: "retention/1", "attrition/1", lambda c, w, x: c.post(
        f"{API}/environments/staging/check", json={"ref": x})),
    Cell("request a promotion", lambda a: "retention/1", "attrition/1", lambda c, w, x: c.post(
        f"{API}/promotions", json={"ref": x, "environment": "staging", "reason": "r"})),
    Cell("roll back", lambda a: "retention", "attrition", lambda c, w, x: c.post(
        f"{API}/environments/staging/rollback", json={"model": x, "reason": "r"})),
    Cell("deployment history", lambda a: "retention", "attrition", lambda c, w, x: c.get(
        f"{API}/environments/staging/history", params={"model": x})),
    Cell("get a request", lambda a: a["request"], "e" * 32, lambda c, w, x: c.get(
        f"{API}/promotions/{x}")),
    Cell("get a request by prefix", lambda a: a["request"][:8], "e" * 8, lambda c, w, x: c.get(
        f"{API}/promotions/{x}")),
    Cell("approve a request", lambda a: a["request"][:8], "e" * 8, lambda c, w, x: c.post(
        f"{API}/promotions/{x}/approve", json={})),
    Cell("reject a request", lambda a: a["request"], "e" * 32, lambda c, w, x: c.post(
        f"{API}/promotions/{x}/reject", json={"reason": "r"})),
    # accounts
    Cell("revoke another's token", lambda a: a["token"], "0" * 16, lambda c, w, x: c.post(
        f"{API}/tokens/{x}/revoke")),
]  # fmt: skip


def _client(world: World, account: str) -> httpx.Client:
    headers = {"Authorization": f"Bearer {world.tokens[account]}"}
    return httpx.Client(base_url=world.base_url, headers=headers, timeout=60)


def _answer(response: httpx.Response, named: str) -> tuple[int, str]:
    """What a response tells, with the name or id asked about taken out (and the name in
    a reference: ``customers`` of ``customers@1``, ``retention`` of ``retention/1``)."""
    name = re.split(r"[@/]", named)[0]
    return response.status_code, response.text.replace(named, "<named>").replace(name, "<name>")


@pytest.mark.parametrize("account", [f"beta-{role.value}" for role in Role])
def test_another_projects_thing_is_answered_as_nothing(world: World, account: str) -> None:
    same, differ = 0, []
    with _client(world, account) as client:
        for cell in CELLS:
            real = cell.real(world.alpha)
            made_up = _answer(cell.request(client, world, cell.made_up), cell.made_up)
            answer = _answer(cell.request(client, world, real), real)
            if answer != made_up:
                differ.append(f"{cell.name}:\n  alpha's: {answer}\n  none:    {made_up}")
            assert OWNER not in answer[1], (cell.name, answer)  # never named unasked
            same += 1
    assert differ == [], "\n".join(differ)
    print(f"\n{account}: {same} routes answer alpha's things as nothing")


def test_the_refused_writes_changed_nothing_of_alphas(world: World) -> None:
    """(After the answers above.) Alpha's run, model, request and token are as they were,
    and no beta account was given a role in alpha."""
    store = SqlMetadataStore(world.db)
    try:
        run = store.get_run(world.alpha["run"])
        assert (run.status.value, run.lifecycle.value, run.params) == ("RUNNING", "active", {})
        assert store.get_run_inputs(world.alpha["run"]) == ["customers@1"]
        model = SqlModelRegistry(store.engine).get_model("retention")
        assert (model.latest_version, model.aliases) == (1, {"champion": 1})
        request = SqlReleaseLedger(store.engine).get_request(world.alpha["request"])
        assert (request.state.value, request.approvals) == ("waiting", ())
        identity = IdentityStore(store.engine)
        assert [m.user for m in identity.members(OWNER)] == ["alpha-owner"]
        token = next(t for t in identity.list_tokens("alpha-owner"))
        assert token.revoked_at is None
    finally:
        store.close()


def test_a_name_held_by_another_project_is_taken_and_nothing_more(world: World) -> None:
    """Creating an experiment, or adding a version to a dataset or a model, under a name
    alpha holds: refused (409), naming neither alpha nor anything the name holds there."""
    with _client(world, "beta-contributor") as client:
        content = b"beta's own table"
        client.put(f"{API}/objects/{_digest(content)}", content=content).raise_for_status()
        version = {"digest": _digest(content), "kind": "file", "path": "c.csv", "files": 1,
                   "bytes": len(content), "project": CALLER}  # fmt: skip
        answers = [
            client.post(f"{API}/experiments", json={"name": "exp-a", "project": CALLER}),
            client.post(f"{API}/datasets/customers/versions", json=version),
            client.post(
                f"{API}/models/retention/versions",
                json={"digest": _digest(content), "project": CALLER},
            ),
        ]
        for answer in answers:
            assert answer.status_code == 409, answer.text
            assert answer.json()["error"]["code"] == "ALREADY_EXISTS"
            for told in (OWNER, "@1", "/1", "version 1", "champion"):
                assert told not in answer.text, answer.text
        assert client.get(f"{API}/datasets/customers/versions").status_code == 404


def test_a_model_not_found_suggests_only_models_the_caller_may_read(world: World) -> None:
    with _client(world, "beta-viewer") as client:
        answer = client.get(f"{API}/models/scorin")
    assert answer.json()["error"]["message"] == "model 'scorin' not found (models: scoring)"


def test_a_runs_inputs_list_only_data_versions_the_caller_may_read(world: World) -> None:
    """Someone who may read both projects records that a beta run used alpha's data: beta's
    readers see the run, not that input (as a lineage walk from the run shows no edge)."""
    store = SqlMetadataStore(world.db)
    IdentityStore(store.engine).add_user("bridge")
    for project, role in ((OWNER, Role.VIEWER), (CALLER, Role.CONTRIBUTOR)):
        IdentityStore(store.engine).set_role(project, "bridge", role)
    token = IdentityStore(store.engine).create_token("bridge", "t")[1]
    store.close()
    run = world.beta["newer run"]
    with httpx.Client(
        base_url=world.base_url, headers={"Authorization": f"Bearer {token}"}
    ) as bridge:
        used = bridge.post(f"{API}/runs/{run}/inputs", json={"refs": ["customers"]})
        assert used.json() == {"inputs": ["customers@1"]}
        assert bridge.get(f"{API}/runs/{run}/inputs").json() == {"inputs": ["customers@1"]}
    with _client(world, "beta-viewer") as client:
        assert client.get(f"{API}/runs/{run}/inputs").json() == {"inputs": []}
        walked = client.get(f"{API}/lineage/walk", params={"kind": "run", "id": run})
        assert walked.json() == {"edges": []}


def _token(values: list[Any], fingerprint: str) -> str:
    payload = json.dumps([fingerprint, values]).encode()
    return base64.urlsafe_b64encode(payload).decode().rstrip("=")


def _values(token: str) -> tuple[str, list[Any]]:
    found = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    return found[0], found[1]


def test_a_page_token_counts_nothing_and_a_forged_one_reaches_no_other_project(
    world: World,
) -> None:
    """A token names the last run shown by its id, not by the store's internal key (a
    count of every project's runs); naming one of alpha's runs in a forged token finds
    what naming a made-up run finds."""
    search = {"experiment_ids": [world.beta["experiment"]], "limit": 1}
    with _client(world, "beta-viewer") as client:
        first = client.post(f"{API}/runs/search", json=search).json()
        fingerprint, values = _values(first["next_page_token"])
        assert values[-1] == first["runs"][0]["id"]  # the newest run (started last)
        assert len(values) == 3  # the start time's null flag and value, then the run id
        after = client.post(
            f"{API}/runs/search",
            json={**search, "limit": 10, "page_token": first["next_page_token"]},
        )
        assert [r["id"] for r in after.json()["runs"]] == [world.beta["run"]]
        answers = [
            client.post(f"{API}/runs/search", json={
                **search, "page_token": _token([*values[:-1], run_id], fingerprint)})
            for run_id in (world.alpha["run"], world.alpha["child"], NO_RUN)
        ]  # fmt: skip
    assert answers[0].status_code == 200
    assert answers[0].text == answers[1].text == answers[2].text

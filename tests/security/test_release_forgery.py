"""What a release gate decides on cannot be borrowed from another project, made up after
the fact, or used to make the server work without bound.

- An ``evaluate`` gate measures a model only on data of the model's own project: a policy
  naming another project's data fails the gate with the answer it gives for data that
  does not exist, so a reader learns nothing of that data (not even that it exists).
- Evidence comes from the model's project only: a version made by another project's run
  has no run's metrics to show.
- Tags under ``cairn.`` (what the provenance gate, the pipeline runner and its cache read)
  are written only by the run's own account, while the run is open: nobody rewrites
  someone else's run, nor relabels a finished one. A step run counts as a pipeline's only
  when the pipeline run is the same account's.
- Gate evaluations run a few at once, whoever asks (a ``gate check`` needs only ``read``),
  and the same one is measured once: asked again, it is answered from what was measured.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import cairn
from cairn import sdk
from cairn.core.access import Principal, Role
from cairn.core.actor import on_behalf_of
from cairn.core.run import NewRun, RunRecord, RunStatus
from cairn.errors import ModelFailed, PermissionDenied, ServerBusy
from cairn.releases.measurements import Measurements
from cairn.stores.metadata.identity import IdentityStore
from cairn.stores.metadata.sql import SqlMetadataStore
from security.test_model_isolation import _workers
from server_process import start_server, stop

OWN, OTHER = "fraud", "churn"  # the model's project, and the one whose data it must not use
COMMIT = "0123456789abcdef0123456789abcdef01234567"
ROWS = pd.DataFrame(
    {"x": [float(i) for i in range(40)], "label": [int(i >= 20) for i in range(40)]}
)
PIPELINE_TAGS = {
    "cairn.run.kind": "pipeline",
    "cairn.pipeline": "train",
    "cairn.git.dirty": "false",
}


def _evaluate(data: str) -> str:
    return ("gates:\n  - evaluate:\n      data: " + data + "\n      target: label\n"
            "      metrics: {accuracy: '>= 0.5'}\n      timeout: 120\n")  # fmt: skip


ENVIRONMENTS = {
    "shared": _evaluate(f"{OTHER}-holdout@latest"),  # an installation-wide environment
    "nowhere": _evaluate("no-such-holdout@latest"),
    "own": _evaluate(f"{OWN}-holdout@latest"),
    "provenance": "gates:\n  - provenance: committed_code\n",
    "metric": "gates:\n  - metric: val_auc\n    min: 0.5\n",
    "reviewed": "",  # no gates, one approval
}


@dataclass
class World:
    url: str
    pid: int
    tokens: dict[str, str]
    experiment: str  # churn's

    def client(self, account: str) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[account]}"}
        return httpx.Client(base_url=f"{self.url}/api/v1", headers=headers, timeout=300)

    def check(self, account: str, ref: str, environment: str) -> dict[str, Any]:
        """The one gate's result, as ``gate check`` answers it to ``account``."""
        with self.client(account) as client:
            answer = client.post(f"/environments/{environment}/check", json={"ref": ref})
        assert answer.status_code == 200, answer.text
        [gate] = answer.json()["gates"]
        return dict(gate)


def _holdout(workspace: Path, project: str) -> None:
    folder = workspace / f"{project}-holdout"
    folder.mkdir()
    ROWS.to_csv(folder / "holdout.csv", index=False)
    sdk.session().data_in(workspace).add(folder, project=project)


def _runs(store: SqlMetadataStore, experiment: str) -> dict[str, str]:
    """A clean pipeline run of alice's with a step run of hers and one of bob's nested in
    it, and a hand-made run of churn's that logged a good val_auc."""

    def run(user: str, tags: dict[str, str], parent: str | None = None) -> str:
        return store.create_run(NewRun(experiment, "r", 1, user, parent, COMMIT, tags=tags)).id

    pipeline = run("alice", PIPELINE_TAGS)
    steps = {user: run(user, {"cairn.step": "fit"}, pipeline) for user in ("alice", "bob")}
    by_hand = run("alice", {})
    store.log_batch(by_hand, [("val_auc", 0.93, 0, 1)])
    return {"alice-step": steps["alice"], "bob-step": steps["bob"], "by-hand": by_hand}


def _model(c: float) -> LogisticRegression:
    return LogisticRegression(C=c).fit(ROWS[["x"]], ROWS["label"])


def _register(root: Path, store: SqlMetadataStore, experiment: str) -> None:
    _holdout(root / "workspace", OTHER)
    _holdout(root / "workspace", OWN)
    models = sdk.models()
    for c in (1.0, 2.0, 3.0):  # fraud-probe/1 … /3: the same model, three packages
        models.register(_model(c), "fraud-probe", project=OWN, input_example=ROWS[["x"]][:3])
    runs = _runs(store, experiment)
    for step in ("alice-step", "bob-step"):  # churn-model/1: alice's step; /2: bob's
        models.register(_model(1.0), "churn-model", run_id=runs[step])
    # Made by churn's run, registered in fraud by someone who may read both.
    models.register(_model(1.0), "borrowed", run_id=runs["by-hand"], project=OWN)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """Projects churn and fraud, each with its own held-out table; models of fraud's; a
    server with authentication that runs one evaluation at a time."""
    root = tmp_path_factory.mktemp("forgery")
    (root / "workspace").mkdir()
    db, artifacts = f"sqlite:///{root / 'cairn.db'}", str(root / "objects")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CAIRN_HOME", str(root / "home"))
        patch.setenv("CAIRN_DB", db)
        patch.setenv("CAIRN_ARTIFACTS", artifacts)
        store = SqlMetadataStore(db)
        tokens = _accounts(IdentityStore(store.engine))
        experiment = store.create_experiment("e-churn", OTHER).id
        _register(root, store, experiment)
        for name, policy in ENVIRONMENTS.items():
            cairn.releases.create_environment(name, policy)
        store.close()
        sdk.close()
        patch.setenv("CAIRN_SERVER_EVALUATIONS", "1")
        log = (root / "server.log").open("w+b")
        process, url = start_server(db, artifacts, log, auth=True)
    try:
        yield World(url, process.pid, tokens, experiment)
    finally:
        stop(process)
        log.close()


def _accounts(identity: IdentityStore) -> dict[str, str]:
    """alice and bob write in churn; in fraud, frank writes, vera reads, mia maintains and
    ana approves."""
    for project in (OTHER, OWN):
        identity.add_project(project)
    identity.add_user("root", admin=True)
    roles = {"alice": (OTHER, Role.CONTRIBUTOR), "bob": (OTHER, Role.CONTRIBUTOR),
             "frank": (OWN, Role.CONTRIBUTOR), "vera": (OWN, Role.VIEWER),
             "mia": (OWN, Role.MAINTAINER), "ana": (OWN, Role.APPROVER)}  # fmt: skip
    for account, (project, role) in roles.items():
        identity.add_user(account)
        identity.set_role(project, account, role)
    return {account: identity.create_token(account, "t")[1] for account in ("root", *roles)}


# an evaluate gate measures the model's project's data only

NOT_OURS = ("could not evaluate on {data}: {data} is not in the model's project ('fraud'): "
            "a model is evaluated only on data of its own project")  # fmt: skip


def test_an_evaluate_gate_never_measures_another_projects_data(world: World) -> None:
    """fraud's reader learns nothing of churn's holdout: not its rows, its version or its
    columns — the answer is the one for a holdout that does not exist."""
    theirs = world.check("vera", "fraud-probe/1", "shared")
    nothing = world.check("vera", "fraud-probe/1", "nowhere")
    assert not theirs["passed"]
    assert theirs["reason"] == NOT_OURS.format(data=f"{OTHER}-holdout@latest")
    assert nothing["reason"] == NOT_OURS.format(data="no-such-holdout@latest")
    assert theirs["evidence"] == {"data": f"{OTHER}-holdout@latest"}  # no version, no metric


def test_gate_evidence_reads_no_run_of_another_project(world: World) -> None:
    """A version of fraud's made by churn's run: fraud's reader sees no metric of it."""
    gate = world.check("vera", "borrowed/1", "metric")
    assert not gate["passed"]
    assert gate["reason"] == "the run that made it logged no val_auc"
    assert "0.93" not in str(gate)


def _watching(server_pid: int, action: Callable[[], Any]) -> tuple[Any, set[int], int]:
    """What ``action`` returned, every worker process seen while it ran, and how many were
    alive at once at most (a worker lives a second or more: importing scikit-learn)."""
    seen: set[int] = set()
    most, done = 0, threading.Event()

    def watch() -> None:
        nonlocal most
        while not done.is_set():
            alive = set(_workers(server_pid))
            seen.update(alive)
            most = max(most, len(alive))
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        result = action()
    finally:
        done.set()
        watcher.join()
    return result, seen, most


@pytest.mark.slow
def test_checks_by_a_reader_run_one_evaluation_at_a_time_and_each_once(world: World) -> None:
    """CAIRN_SERVER_EVALUATIONS=1: five concurrent checks by a viewer — two versions,
    one of them asked four times — start two workers, one at a time; asking again starts
    none, and answers the same measurement."""
    refs = ["fraud-probe/2", "fraud-probe/3", *["fraud-probe/2"] * 3]
    gates: dict[int, dict[str, Any]] = {}

    def check_all() -> None:
        def one(index: int, ref: str) -> None:
            gates[index] = world.check("vera", ref, "own")

        threads = [threading.Thread(target=one, args=item) for item in enumerate(refs)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    _, seen, most = _watching(world.pid, check_all)
    assert [g["passed"] for _, g in sorted(gates.items())] == [True] * len(refs), gates
    assert gates[0]["evidence"]["data"] == f"{OWN}-holdout@1"  # its own data is measured
    assert most == 1
    assert len(seen) == 2
    again, seen, _ = _watching(world.pid, lambda: world.check("vera", "fraud-probe/2", "own"))
    assert seen == set()
    assert again == gates[0]


# the mechanism: a slot, or a clear failure; one measurement shared by all who ask


def test_an_evaluation_that_finds_no_free_slot_in_time_fails_saying_why() -> None:
    measurements: Measurements[str, float] = Measurements(1)
    started, release = threading.Event(), threading.Event()

    def slow() -> float:
        started.set()
        release.wait(10)
        return 1.0

    holder = threading.Thread(target=measurements.get, args=("a", slow, 10))
    holder.start()
    assert started.wait(10)
    began = time.monotonic()
    with pytest.raises(ServerBusy, match=r"no evaluation slot came free within 0\.3 s \(1 run"):
        measurements.get("b", lambda: 2.0, 0.3)
    assert time.monotonic() - began < 3
    release.set()
    holder.join()
    assert measurements.get("b", lambda: 2.0, 0.3) == 2.0  # the slot is free again


def test_a_failed_evaluation_is_answered_to_all_who_waited_for_it_and_not_kept() -> None:
    measurements: Measurements[str, float] = Measurements(2)
    calls, started, release = [], threading.Event(), threading.Event()

    def failing() -> float:
        calls.append(1)
        started.set()
        release.wait(10)
        raise ModelFailed("the model raised ValueError: no")

    errors: list[BaseException] = []

    def ask() -> None:
        try:
            measurements.get("a", failing, 10)
        except ModelFailed as exc:
            errors.append(exc)

    first = threading.Thread(target=ask)
    first.start()
    assert started.wait(10)
    second = threading.Thread(target=ask)
    second.start()
    time.sleep(0.2)  # the second waits for the first's answer
    release.set()
    first.join()
    second.join()
    assert [str(e) for e in errors] == ["the model raised ValueError: no"] * 2
    assert len(calls) == 1
    with pytest.raises(ModelFailed):
        measurements.get("a", failing, 10)  # measured again: a failure is not kept
    assert len(calls) == 2


# tags under cairn. are the run's own account's, while it runs


def _new_run(world: World, account: str, **fields: Any) -> str:
    body = {"experiment_id": world.experiment, "name": "r", "start_time": 1, **fields}
    with world.client(account) as client:
        answer = client.post("/runs", json=body)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def _tag(world: World, account: str, run_id: str, tags: dict[str, str]) -> httpx.Response:
    with world.client(account) as client:
        return client.post(f"/runs/{run_id}/batch", json={"tags": tags})


def _tags(world: World, run_id: str) -> dict[str, str]:
    with world.client("root") as client:
        return dict(client.get(f"/runs/{run_id}").json()["tags"])


@pytest.mark.parametrize("account", ["bob", "root"])
def test_nobody_else_writes_a_runs_system_tags(world: World, account: str) -> None:
    """Not another writer of the project, not an admin: the seal and output of alice's
    step run are hers."""
    step = _new_run(world, "alice", tags={"cairn.step": "fit"})
    answer = _tag(world, account, step, {"cairn.step.output.digest": "blake3:" + "0" * 64})
    assert answer.status_code == 403
    assert "tag 'cairn.step.output.digest'" in answer.json()["error"]["message"]
    assert _tag(world, account, step, {"note": "looked at it"}).status_code == 204
    assert _tags(world, step) == {"cairn.step": "fit", "note": "looked at it"}


def test_a_finished_run_is_not_relabelled_as_a_pipelines(world: World) -> None:
    """alice trained by hand; once it ended, she cannot make it look made by a pipeline."""
    by_hand = _new_run(world, "alice", git_commit=COMMIT)
    assert _tag(world, "alice", by_hand, {"note": "v1"}).status_code == 204  # while it runs
    with world.client("alice") as client:
        ended = client.post(f"/runs/{by_hand}/end", json={"status": "FINISHED", "end_time": 2})
    assert ended.status_code == 200
    answer = _tag(world, "alice", by_hand, PIPELINE_TAGS)
    assert answer.status_code == 403
    assert "tag 'cairn.git.dirty'" in answer.json()["error"]["message"]
    assert "has ended (FINISHED)" in answer.json()["error"]["message"]
    assert _tags(world, by_hand) == {"note": "v1"}


def test_a_run_writes_its_own_system_tags_while_it_runs(world: World) -> None:
    run = _new_run(world, "alice")
    assert _tag(world, "alice", run, {"cairn.step": "fit"}).status_code == 204
    assert _tags(world, run) == {"cairn.step": "fit"}


def test_a_step_run_of_another_account_borrows_no_pipelines_provenance(world: World) -> None:
    """bob nests his own run, tagged as a step, in alice's clean pipeline run."""
    alice = world.check("alice", "churn-model/1", "provenance")
    bob = world.check("alice", "churn-model/2", "provenance")
    assert (alice["passed"], alice["reason"]) == (True, f"commit {COMMIT[:12]}, clean tree")
    assert (bob["passed"], bob["reason"]) == (False, "it was not made by a pipeline run")


# the same rule in the store's write transaction, on SQLite and PostgreSQL

ALICE = Principal("alice", roles={OTHER: Role.CONTRIBUTOR}, account=True)
BOB = Principal("bob", roles={OTHER: Role.CONTRIBUTOR}, account=True)


@pytest.fixture
def store(database_url: str) -> Iterator[SqlMetadataStore]:
    opened = SqlMetadataStore(database_url)
    identity = IdentityStore(opened.engine)
    identity.add_project(OTHER)
    for principal in (ALICE, BOB):
        identity.add_user(principal.name)
        identity.set_role(OTHER, principal.name, Role.CONTRIBUTOR)
    yield opened
    opened.close()


def _started(store: SqlMetadataStore, principal: Principal, **fields: Any) -> str:
    experiment = store.get_experiment_by_name("e") or store.create_experiment("e", OTHER)
    with on_behalf_of(principal):
        return store.create_run(NewRun(experiment.id, "r", 1, None, **fields)).id


def test_the_store_refuses_system_tags_from_another_account(store: SqlMetadataStore) -> None:
    step = _started(store, ALICE, tags={"cairn.step": "fit"})
    with on_behalf_of(BOB), pytest.raises(PermissionDenied, match=r"tag 'cairn\.step\.seal'"):
        store.log_batch(step, [("m", 1.0, 0, 1)], {"p": "1"}, {"cairn.step.seal": "forged"})
    run = store.get_run(step)
    assert (run.tags, run.params, run.metrics) == ({"cairn.step": "fit"}, {}, {})  # nothing


def test_a_trial_ended_inside_its_running_sweep_is_still_marked_by_it(
    store: SqlMetadataStore,
) -> None:
    """A sweep tags its best trial once every trial has ended, before the sweep ends."""
    sweep = _started(store, ALICE)
    trial = _started(store, ALICE, parent_id=sweep)
    with on_behalf_of(ALICE):
        store.end_run(trial, RunStatus.FINISHED, 2)
        store.log_batch(trial, [], {}, {"cairn.sweep.best": "true"})
        store.end_run(sweep, RunStatus.FINISHED, 3)
        with pytest.raises(PermissionDenied, match=r"run \w+ has ended"):
            store.log_batch(trial, [], {}, {"cairn.sweep.best": "false"})
    assert store.get_run(trial).tags == {"cairn.sweep.best": "true"}


def test_a_run_recorded_whole_keeps_its_system_tags(store: SqlMetadataStore) -> None:
    """A pipeline's cached step is recorded ended, with its tags, by its own account."""
    experiment = store.create_experiment("e", OTHER)
    tags = {"cairn.step": "fit", "cairn.step.state": "cached"}
    new = NewRun(experiment.id, "cached", 1, None, tags=tags)
    with on_behalf_of(ALICE):
        [run] = store.record_runs([RunRecord(new, RunStatus.FINISHED, 2)])
    assert run.tags == tags
    assert run.user == "alice"


# who may withdraw a request (docs/governance.md says what is true)


def test_a_requester_without_approve_cannot_reject_their_own_request(world: World) -> None:
    """mia (a maintainer) asked; only someone with ``approve`` may reject it."""
    with world.client("mia") as mia:
        body = {"ref": "fraud-probe/1", "environment": "reviewed", "reason": "try"}
        request = mia.post("/promotions", json=body).json()
        refused = mia.post(f"/promotions/{request['id']}/reject", json={"reason": "mine"})
    assert request["state"] == "waiting"
    assert refused.status_code == 403
    assert "'approve' permission" in refused.json()["error"]["message"]
    with world.client("ana") as ana:
        rejected = ana.post(f"/promotions/{request['id']}/reject", json={"reason": "stale"})
    assert (rejected.status_code, rejected.json()["state"]) == (200, "rejected")

"""A cached pickle is not a way into someone else's process.

On a shared server, anyone who may write an experiment's runs can record a step run whose
tags point at a pickle they stored, under a cache key anyone computes from the code — or
rewrite the tags of a teammate's step run. The next teammate whose run takes that "cached"
output would unpickle it: code execution with their credentials. Here bob (a contributor,
like alice, of one project on a real server; each with a Cairn home of their own) forges
such entries with a gadget pickle that creates a marker file when loaded: alice's runs and
reproductions never load it, run the step again and say why; a pickle that passes the
registry's scan, and her own pickles of her project's classes, are still reused.
"""

from __future__ import annotations

import io
import json
import pickle
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import cairn
from cairn.core.access import Role
from cairn.core.artifact import ArtifactEntry
from cairn.core.clock import now_ms
from cairn.core.run import NewRun, Run, RunRecord, RunStatus
from cairn.core.search import RunQuery
from cairn.errors import PermissionDenied
from cairn.pipelines.trust import OUTPUT_DIGEST, OUTPUT_FORMAT, SEAL
from cairn.sdk import session
from cairn.stores.metadata.identity import IdentityStore
from cairn.stores.metadata.sql import SqlMetadataStore
from cli_process import cairn_cli
from security.test_cross_project import Team
from server_process import running_server

PROJECT = "team"
EXPERIMENTS = ("gadget", "plain", "rewrite", "reproduce")

FLOW = """
from cairn import pipeline, step


class Box:
    # A class of the project: its pickle names flow.Box, which the scan does not pass.
    def __init__(self, rows):
        self.rows = rows


@step
def make(n: int):
    return set(range(n))  # not JSON: stored with pickle (plain data)


@step
def total(values):
    return {"total": sum(values)}


@pipeline
def churn(n: int = 3):
    total(make(n))


@step
def boxed(n: int):
    return Box(list(range(n)))


@step
def count(box):
    return {"rows": len(box.rows)}


@pipeline
def boxes(n: int = 3):
    count(boxed(n))
"""


class Gadget:
    """Pickled, it runs code when loaded: it creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (exec, (f"open({str(self.marker)!r}, 'w').close()",))


@dataclass
class Members:
    """alice and bob, each in a copy of the project with a Cairn home of their own (a
    ``Team`` each, whose home is in its folder): the keys of their steps are the same."""

    teams: dict[str, Team]

    def cli(self, name: str, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        return self.teams[name].cli(name, *args, ok=ok)

    def run(self, name: str, experiment: str) -> dict[str, Any]:
        """``cairn run flow:churn --json`` as ``name``: the step results by name."""
        done = self.cli(name, "run", "flow:churn", "--experiment", experiment, "--json")
        found: dict[str, Any] = json.loads(done.stdout)
        found["by_step"] = {s["name"]: s for s in found["steps"]}
        return found

    def forge(self, name: str, step_run: str, value: Any) -> str:
        """As ``name``, through the SDK: store ``value`` pickled and record a step run of
        their own under ``step_run``'s cache key (its tags), whose output is that pickle —
        what anyone who may write the experiment can do; the pickle's digest."""
        self.teams[name].sdk(name)
        stores = session()
        info = stores.artifacts.put_stream(io.BytesIO(pickle.dumps(value)))
        found = stores.metadata.get_run(step_run)
        tags = {k: v for k, v in found.tags.items() if k != SEAL}
        tags |= {OUTPUT_DIGEST: info.digest, OUTPUT_FORMAT: "pickle"}
        new = NewRun(found.experiment_id, found.name, now_ms(), None, tags=tags)
        (forged,) = stores.metadata.record_runs([RunRecord(new, RunStatus.FINISHED, now_ms())])
        entry = ArtifactEntry("output/make.pickle", info.digest, info.size)
        stores.metadata.add_artifacts(forged.id, [entry])
        return info.digest

    def forge_pipeline_run(self, name: str, pipeline_run: str, value: Any) -> str:
        """As ``name``: record a copy of ``pipeline_run`` and its step runs (tags and all),
        whose ``make`` output is ``value`` pickled; the copy's id."""
        self.teams[name].sdk(name)
        stores = session()
        info = stores.artifacts.put_stream(io.BytesIO(pickle.dumps(value)))
        found = stores.metadata.get_run(pipeline_run)
        steps = stores.metadata.search_runs(
            RunQuery((found.experiment_id,), f"attributes.parent_run_id = '{found.id}'")
        ).runs

        def copy(run: Run, parent: str | None, tags: dict[str, str]) -> RunRecord:
            new = NewRun(run.experiment_id, run.name, now_ms(), None, parent, run.git_commit,
                         tags=tags)  # fmt: skip
            return RunRecord(new, RunStatus.FINISHED, now_ms())

        (parent,) = stores.metadata.record_runs([copy(found, None, dict(found.tags))])
        forged = {OUTPUT_DIGEST: info.digest, OUTPUT_FORMAT: "pickle"}
        recorded = stores.metadata.record_runs([
            copy(step, parent.id, {**step.tags, **(forged if step.name == "make" else {})})
            for step in steps
        ])  # fmt: skip
        make = next(run.id for run in recorded if run.name == "make")
        entry = ArtifactEntry("output/make.pickle", info.digest, info.size)
        stores.metadata.add_artifacts(make, [entry])  # where the project may read it
        return parent.id

    def rewrite(self, name: str, step_run: str, value: Any) -> None:
        """As ``name``, point ``step_run``'s output at ``value`` pickled."""
        self.teams[name].sdk(name)
        stores = session()
        info = stores.artifacts.put_stream(io.BytesIO(pickle.dumps(value)))
        tags = {OUTPUT_DIGEST: info.digest, OUTPUT_FORMAT: "pickle"}
        stores.metadata.log_batch(step_run, [], {}, tags)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """One server for the module: alice and bob contribute to one project, whose
    experiments the tests share out (one each)."""
    folder = tmp_path_factory.mktemp("server")
    db = f"sqlite:///{folder / 'team.db'}"
    store = SqlMetadataStore(db)
    identity = IdentityStore(store.engine)
    identity.add_project(PROJECT)
    tokens = {}
    for name in ("alice", "bob"):
        identity.add_user(name)
        identity.set_role(PROJECT, name, Role.CONTRIBUTOR)
        tokens[name] = identity.create_token(name, "t")[1]
    for experiment in EXPERIMENTS:
        store.create_experiment(experiment, PROJECT)
    store.close()
    with running_server(db, str(folder / "objects"), auth=True) as base_url:
        yield base_url, tokens


@pytest.fixture
def team(server: tuple[str, dict[str, str]], tmp_path: Path) -> Members:
    teams = {}
    for name in ("alice", "bob"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "flow.py").write_text(FLOW)
        teams[name] = Team(*server, tmp_path / name)
    return Members(teams)


def test_a_gadget_cached_by_another_account_is_not_loaded_and_the_step_runs_again(
    team: Members, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    bobs = team.run("bob", "gadget")["by_step"]
    team.forge("bob", bobs["make"]["run_id"], Gadget(marker))
    done = team.cli("alice", "run", "flow:churn", "--experiment", "gadget")
    assert not marker.exists()
    # make ran again, to the output bob's run had before he forged it: total's JSON, from
    # his run, is safe to read and is reused.
    assert [line.split()[:2] for line in done.stdout.splitlines()[1:3]] == [
        ["make", "ran"], ["total", "cached"],
    ]  # fmt: skip
    line = (
        "warning: step make: the cached output is a pickle recorded by bob that imports "
        "builtins.exec; pickles are reused only from your own runs or when they pass the "
        "scan — ran it again"
    )
    assert done.stderr.splitlines().count(line) == 1, done.stderr
    again = team.run("alice", "gadget")  # her own output now: cached, and said nothing of
    assert {s["state"] for s in again["steps"]} == {"cached"}
    assert again["warnings"] == []
    assert not marker.exists()


def test_another_account_cannot_rewrite_the_output_of_ones_own_step_run(
    team: Members, tmp_path: Path
) -> None:
    """Tags under ``cairn.`` are written only by the run's own account while it runs: bob
    cannot point alice's finished step at his gadget (a tampered database that did would
    still meet her home's seal: ``tests/unit/pipelines/test_trust.py``)."""
    marker = tmp_path / "pwned"
    alices = team.run("alice", "rewrite")["by_step"]
    with pytest.raises(PermissionDenied, match=f"tag '{OUTPUT_DIGEST}'"):
        team.rewrite("bob", alices["make"]["run_id"], Gadget(marker))
    done = team.run("alice", "rewrite")
    assert not marker.exists()
    assert {s["state"] for s in done["steps"]} == {"cached"}
    assert done["warnings"] == []


def test_a_pickle_of_plain_data_passes_the_scan_and_is_reused(team: Members) -> None:
    bobs = team.run("bob", "plain")["by_step"]
    team.forge("bob", bobs["make"]["run_id"], {100, 200})
    done = team.run("alice", "plain")
    assert done["by_step"]["make"]["state"] == "cached"  # bob's entry, reused
    assert done["by_step"]["total"]["state"] == "ran"
    assert done["warnings"] == []
    team.teams["alice"].sdk("alice")
    assert cairn.get_run(done["run_id"]).metrics["total"].value == 300  # its value, loaded


def test_reproducing_a_run_with_a_gadget_output_compares_its_bytes_only(
    team: Members, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    bobs = team.run("bob", "reproduce")
    forged = team.forge_pipeline_run("bob", bobs["run_id"], Gadget(marker))
    done = team.cli("alice", "reproduce", forged, "--json", ok=False)
    assert not marker.exists()
    steps = {s["step"]: s for s in json.loads(done.stdout)["steps"]}
    assert steps["total"]["verdict"] == "identical"
    assert steps["make"]["verdict"] == "different"
    assert steps["make"]["detail"] == (
        "the output's bytes differ; its values were not compared: the recorded output is a "
        "pickle recorded by bob that imports builtins.exec, and loading it would run code"
    )


def test_ones_own_pickle_of_a_project_class_is_reused_though_the_scan_refuses_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Embedded: the output of ``boxed`` is a pickle naming ``flow.Box``, which no scan
    passes; it is the user's own (their account, their home's seal), so ``--only count``
    takes it from the cache and loads it."""
    (tmp_path / "flow.py").write_text(FLOW)
    monkeypatch.chdir(tmp_path)
    cairn_cli("run", "flow:boxes")
    again = json.loads(cairn_cli("run", "flow:boxes", "--only", "count", "--json").stdout)
    assert [(s["name"], s["state"]) for s in again["steps"]] == [
        ("boxed", "cached"), ("count", "ran"),
    ]  # fmt: skip
    assert again["warnings"] == []

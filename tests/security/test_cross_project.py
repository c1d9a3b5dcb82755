"""A project's objects are its own, though every object is stored once by content.

Recording a digest in a project (a run's artifacts, a data version's manifest, profile or
objects, a model version's package files) hands the object to whoever may read there, so
the caller must hold it already: may read it where another project holds it, or have
uploaded its bytes. The store decides it inside the write's transaction, tested here on
SQLite and PostgreSQL; what a server answers about objects (the existence oracle,
downloads, lineage walks) is in ``tests/integration/test_access_control.py``. Then the
flows a team runs through a server — artifacts, data versions, models — with two projects
whose files are identical: each uploads its copy, records it and reads it back.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import blake3
import pytest
from sqlalchemy import event

import cairn
from cairn.core.access import Principal, Role
from cairn.core.actor import on_behalf_of
from cairn.core.artifact import ArtifactEntry
from cairn.core.authorizer import Authorizer
from cairn.core.data import DataKind, DataRef, NewDataVersion
from cairn.core.lineage import RUN, Node
from cairn.core.model import NewModelVersion, PackageFile
from cairn.core.pipeline import CACHE_KEY, OUTPUT_DIGEST
from cairn.core.run import NewRun, Run, RunRecord, RunStatus
from cairn.errors import NotFound, PermissionDenied
from cairn.stores.metadata import schema as t
from cairn.stores.metadata.data import SqlDataCatalog
from cairn.stores.metadata.engine import write_transaction
from cairn.stores.metadata.identity import IdentityStore
from cairn.stores.metadata.lineage import SqlLineage
from cairn.stores.metadata.models import SqlModelRegistry
from cairn.stores.metadata.sql import SqlMetadataStore
from cairn.tracking.metadata import MetadataService
from server_process import running_server

OWN, OTHER = "churn", "fraud"
# Principals as a server authenticates them; a write reads their roles again anyway.
MALLORY = Principal("mallory", roles={OTHER: Role.CONTRIBUTOR}, account=True)
BRIDGE = Principal("bridge", roles={OTHER: Role.CONTRIBUTOR, OWN: Role.VIEWER}, account=True)
ROOT = Principal("root", is_admin=True, account=True)


def _digest(content: bytes) -> str:
    return f"blake3:{blake3.blake3(content).hexdigest()}"


@dataclass
class Stores:
    metadata: SqlMetadataStore
    catalog: SqlDataCatalog
    registry: SqlModelRegistry
    fraud_run: str
    churn: dict[str, str]  # what churn holds, by how it holds it
    own: str  # an object mallory uploaded


@pytest.fixture
def stores(database_url: str) -> Iterator[Stores]:
    """Projects churn and fraud, with objects only churn holds (recorded by a trusted
    caller), and a run of fraud's."""
    metadata = SqlMetadataStore(database_url)
    identity = IdentityStore(metadata.engine)
    for project in (OWN, OTHER):
        identity.add_project(project)
    identity.add_user("root", admin=True)
    for principal in (MALLORY, BRIDGE):
        identity.add_user(principal.name)
        for project, role in principal.roles.items():
            identity.set_role(project, principal.name, role)
    catalog, registry = SqlDataCatalog(metadata.engine), SqlModelRegistry(metadata.engine)
    runs = {}
    for project in (OWN, OTHER):
        experiment = metadata.create_experiment(f"e-{project}", project)
        runs[project] = metadata.create_run(NewRun(experiment.id, "r", 1, "u")).id
    kinds = ("artifact", "manifest", "profile", "data object", "package", "package file")
    churn = {kind: _digest(kind.encode()) for kind in kinds}
    metadata.add_artifacts(runs[OWN], [ArtifactEntry("a.txt", churn["artifact"], 8)])
    catalog.add_version(
        _data("d-churn", churn["manifest"], OWN, churn["profile"], churn["data object"])
    )
    registry.register_version(_model("m-churn", churn["package"], churn["package file"]), OWN)
    own = _digest(b"mallory's own")
    metadata.record_upload(own, MALLORY)
    yield Stores(metadata, catalog, registry, runs[OTHER], churn, own)
    metadata.close()


def _data(
    name: str, digest: str, project: str = OTHER, profile: str = "", *objects: str
) -> NewDataVersion:
    return NewDataVersion(
        name, digest, DataKind.DIRECTORY, "data", 1, 8, project=project, profile=profile,
        objects=(digest, *objects),
    )  # fmt: skip


def _model(name: str, manifest: str, weights: str) -> NewModelVersion:
    files = (PackageFile("cairn-model.yaml", manifest, 9), PackageFile("model.pkl", weights, 9))
    return NewModelVersion(name, manifest, "sklearn", files, {})


# Each write of fraud's that names ``digest``; ``s.own`` is an object mallory uploaded.
WRITES: dict[str, Callable[[Stores, str], object]] = {
    "run artifacts": lambda s, digest: s.metadata.add_artifacts(
        s.fraud_run, [ArtifactEntry("copied.txt", digest, 8)]
    ),
    "data version digest": lambda s, digest: s.catalog.add_version(_data("d-fraud", digest)),
    "data version profile": lambda s, digest: s.catalog.add_version(
        _data("d-fraud", s.own, OTHER, digest)
    ),
    "data version objects": lambda s, digest: s.catalog.add_version(
        _data("d-fraud", s.own, OTHER, "", digest)
    ),
    "model version manifest": lambda s, digest: s.registry.register_version(
        _model("m-fraud", digest, s.own), OTHER
    ),
    "model version file": lambda s, digest: s.registry.register_version(
        _model("m-fraud", s.own, digest), OTHER
    ),
}


def _nothing_recorded_in_fraud(s: Stores) -> None:
    assert s.metadata.list_artifacts(s.fraud_run) == []
    with pytest.raises(NotFound):
        s.catalog.get_version(DataRef("d-fraud"))
    with pytest.raises(NotFound):
        s.registry.get_model("m-fraud")


@pytest.mark.parametrize("write", WRITES, ids=list(WRITES))
def test_naming_another_projects_object_records_nothing_until_the_bytes_are_uploaded(
    stores: Stores, write: str
) -> None:
    for kind, digest in stores.churn.items():
        with on_behalf_of(MALLORY), pytest.raises(PermissionDenied, match="upload") as refused:
            WRITES[write](stores, digest)
        assert digest in refused.value.message, kind
        _nothing_recorded_in_fraud(stores)
    digest = stores.churn["artifact"]
    stores.metadata.record_upload(digest, MALLORY)  # what PUT /objects/{digest} records
    with on_behalf_of(MALLORY):
        WRITES[write](stores, digest)


@pytest.mark.parametrize("principal", [BRIDGE, ROOT, None], ids=["reader", "admin", "trusted"])
@pytest.mark.parametrize("write", WRITES, ids=list(WRITES))
def test_whoever_may_read_an_object_records_it_without_uploading(
    stores: Stores, write: str, principal: Principal | None
) -> None:
    digest = stores.churn["package file"]
    if principal is None:  # the embedded store's own user
        WRITES[write](stores, digest)
        return
    stores.metadata.record_upload(stores.own, principal)  # ``own`` is theirs, too
    with on_behalf_of(principal):
        WRITES[write](stores, digest)


def test_a_role_taken_away_takes_the_objects_it_let_one_record(stores: Stores) -> None:
    """Holding is decided with the account as it stands inside the write's transaction."""
    IdentityStore(stores.metadata.engine).set_role(OWN, BRIDGE.name, None)
    with on_behalf_of(BRIDGE), pytest.raises(PermissionDenied):
        WRITES["run artifacts"](stores, stores.churn["artifact"])
    _nothing_recorded_in_fraud(stores)


def test_a_run_may_record_using_only_data_its_caller_may_read(stores: Stores) -> None:
    """A run's inputs link it to a data version, which lineage walks then reach."""
    for ref in ("d-churn@1", "d-churn", f"d-churn@{stores.churn['manifest'][7:15]}"):
        with on_behalf_of(MALLORY), pytest.raises(NotFound) as refused:  # as if not there
            stores.metadata.log_inputs(stores.fraud_run, [ref])
        assert refused.value.message.startswith(("data version d-churn@", "dataset 'd-churn'"))
        assert "churn@1" not in refused.value.message.replace(ref, "")  # nothing resolved
    assert stores.metadata.get_run_inputs(stores.fraud_run) == []
    with on_behalf_of(BRIDGE):
        assert stores.metadata.log_inputs(stores.fraud_run, ["d-churn"]) == ["d-churn@1"]


def test_what_a_principal_holds(stores: Stores) -> None:
    churn, store = set(stores.churn.values()), stores.metadata
    asked = churn | {stores.own, _digest(b"never stored")}
    assert store.held_objects(MALLORY, asked) == {stores.own}
    assert store.readable_objects(MALLORY, asked) == set()
    assert store.held_objects(BRIDGE, asked) == churn  # through churn's runs, data, models
    assert store.readable_objects(ROOT, asked) == asked


def test_a_lineage_walk_goes_only_through_what_its_reader_may_read(stores: Stores) -> None:
    """A churn run made an object from churn's data, and a fraud run used that object:
    walking upstream from the fraud run, a fraud contributor sees the edge to nothing of
    churn's, while a reader of both projects sees the whole way back to the data."""
    store, made = stores.metadata, stores.churn["artifact"]
    experiment = store.get_experiment_by_name("e-churn")
    assert experiment is not None
    churn_run = store.create_run(NewRun(experiment.id, "r", 1, "u")).id
    store.log_inputs(churn_run, ["d-churn@1"])
    store.log_lineage(churn_run, [], [made])
    store.log_lineage(stores.fraud_run, [made], [])  # as a trusted caller could record it
    graph, start = SqlLineage(store.engine), Node(RUN, stores.fraud_run)

    def reached(reader: Principal | None) -> set[str]:
        edges = graph.walk(start, downstream=False, reader=reader)
        return {n.id for e in edges for n in (e.src, e.dst)}

    everything = {stores.fraud_run, made, churn_run, "d-churn@1"}
    assert reached(None) == reached(ROOT) == reached(BRIDGE) == everything
    assert reached(MALLORY) == set()  # the one edge leads to churn's object


def test_a_runs_children_and_a_pipelines_cache_show_only_what_the_reader_may_read(
    stores: Stores,
) -> None:
    """A fraud run nested in a churn pipeline run is listed only to readers of both
    projects; churn's step cache is, to a fraud contributor, an experiment not there."""
    store = stores.metadata
    churn, fraud = store.list_experiments()  # e-churn, then e-fraud
    parent = store.create_run(NewRun(churn.id, "pipeline", 1, "u")).id
    key = "blake3:" + "c" * 64
    tags = {CACHE_KEY: key, OUTPUT_DIGEST: stores.own}
    step = RunRecord(NewRun(churn.id, "make", 2, "u", parent, tags=tags), RunStatus.FINISHED, 3)
    (made,) = store.record_runs([step])
    nested = store.create_run(NewRun(fraud.id, "borrowed", 3, "u", parent)).id
    reader = Principal("carol", roles={OWN: Role.VIEWER}, account=True)

    def as_(principal: Principal) -> MetadataService:
        return MetadataService(store, store, Authorizer(principal))

    for principal, children in ((ROOT, [nested, made.id]), (BRIDGE, [nested, made.id]),
                                (reader, [made.id])):  # fmt: skip
        assert [run.id for run in as_(principal).child_runs(parent)] == children
        assert _id(as_(principal).cached_output(churn.id, key)) == made.id
    unknown = uuid.uuid4().hex
    assert _refusal(lambda e: as_(MALLORY).cached_output(e, key), churn.id, unknown)
    assert _refusal(lambda r: as_(MALLORY).child_runs(r), parent, unknown)


def _refusal(lookup: Callable[[str], object], hidden: str, unknown: str) -> bool:
    """Whether looking ``hidden`` up is refused word for word as looking ``unknown`` up."""
    messages = []
    for named in (hidden, unknown):
        with pytest.raises(NotFound) as refused:
            lookup(named)
        messages.append(refused.value.message.replace(named, "<id>"))
    return messages[0] == messages[1]


def _id(run: Run | None) -> str | None:
    return None if run is None else run.id


@pytest.mark.slow
def test_a_version_of_100k_objects_is_decided_in_batches(stores: Stores, database_url: str) -> None:
    """No query per object: a data version of 100,000 uploaded objects is decided with a
    few hundred statements (on PostgreSQL, 10,000: the same queries, in less time)."""
    count = 100_000 if database_url.startswith("sqlite") else 10_000
    objects = [_digest(str(i).encode()) for i in range(count)]
    rows = [{"digest": d, "user_name": MALLORY.name, "created_at": 1} for d in objects]
    with write_transaction(stores.metadata.engine) as conn:
        conn.execute(t.object_uploads.insert(), rows)
    statements = []

    def counted(*_: Any) -> None:
        statements.append(1)

    new = _data("d-big", objects[0], OTHER, "", *objects[1:])
    event.listen(stores.metadata.engine, "before_cursor_execute", counted)
    started = time.perf_counter()
    with on_behalf_of(MALLORY):
        stores.catalog.add_version(new)
    seconds = time.perf_counter() - started
    event.remove(stores.metadata.engine, "before_cursor_execute", counted)
    print(f"\n{count:,}-object data version: {len(statements)} statements, {seconds:.2f} s")
    assert len(statements) < count / 100
    sample = objects[:: count // 1000]
    assert stores.metadata.held_objects(BRIDGE, sample) == set(sample)  # a reader of fraud
    churn_reader = Principal("carol", roles={OWN: Role.VIEWER}, account=True)
    assert stores.metadata.held_objects(churn_reader, sample) == set()


# Through a server: two projects, identical files.


@dataclass
class Team:
    """A server with alice (contributor of churn) and mallory (of fraud), and one home on
    this machine for both."""

    base_url: str
    tokens: dict[str, str]
    folder: Path

    def sdk(self, name: str) -> None:
        """Point the SDK at the server, with ``name``'s token."""
        cairn.configure(uri=self.base_url, token=self.tokens[name], home=str(self.home))

    def cli(self, name: str, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        """``cairn ARGS`` with ``name``'s token, in a process of its own."""
        env = {**os.environ, "CAIRN_URI": self.base_url, "CAIRN_TOKEN": self.tokens[name],
               "CAIRN_HOME": str(self.home)}  # fmt: skip
        done = subprocess.run(
            [sys.executable, "-m", "cairn", *args], capture_output=True, text=True,
            timeout=120, env=env, cwd=self.folder, check=False,
        )  # fmt: skip
        assert (done.returncode == 0) is ok, done.stderr
        return done

    @property
    def home(self) -> Path:
        return self.folder / "home"


@pytest.fixture
def team(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Team]:
    db = f"sqlite:///{tmp_path / 'team.db'}"
    store = SqlMetadataStore(db)
    identity = IdentityStore(store.engine)
    tokens = {}
    for name, project in (("alice", OWN), ("mallory", OTHER)):
        identity.add_project(project)
        identity.add_user(name)
        identity.set_role(project, name, Role.CONTRIBUTOR)
        tokens[name] = identity.create_token(name, "t")[1]
        store.create_experiment(f"e-{project}", project)
    store.close()
    monkeypatch.chdir(tmp_path)
    with running_server(db, str(tmp_path / "server-objects"), auth=True) as base_url:
        yield Team(base_url, tokens, tmp_path)


def test_the_same_artifact_in_two_projects(team: Team, tmp_path: Path) -> None:
    shared = tmp_path / "metrics.csv"
    shared.write_bytes(b"epoch,loss\n1,0.5\n")
    team.sdk("alice")
    with cairn.start_run(experiment=f"e-{OWN}") as run:
        run.log_artifact(shared)
    churn_run = run.id
    team.sdk("mallory")
    objects = cairn.sdk.session().artifacts
    digest = _digest(shared.read_bytes())
    assert objects.missing([digest]) == {digest}  # stored, but not mallory's: upload it
    with cairn.start_run(experiment=f"e-{OTHER}") as run:
        entry = run.log_artifact(shared)
    assert entry.digest == digest
    tracking = cairn.sdk.session().tracking
    written = tracking.download_artifacts(run.id, "metrics.csv", tmp_path / "mallory")
    assert [p.read_bytes() for p in written] == [shared.read_bytes()]
    with pytest.raises(NotFound):  # churn's run stays churn's: for mallory it is not there
        tracking.download_artifacts(churn_run, "metrics.csv", tmp_path / "stolen")


def test_the_same_data_in_two_projects(team: Team, tmp_path: Path) -> None:
    """``cairn data add``, ``checkout`` and ``push`` through the server, from one machine
    (one stat cache) with each account's token in turn."""
    folder = tmp_path / "customers"
    folder.mkdir()
    (folder / "a.csv").write_text("id,age\n1,30\n")
    (folder / "big.bin").write_bytes(bytes(range(256)) * 8192)  # 2 MiB: its own object
    churn = json.loads(team.cli("alice", "data", "add", str(folder), "--name", "customers",
                                "--project", OWN, "--json").stdout)  # fmt: skip
    fraud = json.loads(team.cli("mallory", "data", "add", str(folder), "--name", "copy",
                                "--project", OTHER, "--json").stdout)  # fmt: skip
    assert (fraud["created"], fraud["digest"]) == (True, churn["digest"])
    assert fraud["read"] == 2  # the stat cache vouched for them, but they were alice's
    team.cli("mallory", "data", "checkout", "copy@1", "--to", str(tmp_path / "out"))
    assert (tmp_path / "out" / "big.bin").read_bytes() == (folder / "big.bin").read_bytes()
    team.cli("mallory", "data", "remote", "add", "origin", str(tmp_path / "remote"))
    assert "pushed" in team.cli("mallory", "data", "push", "copy@1", "--remote", "origin").stdout
    refused = team.cli("mallory", "data", "checkout", "customers@1", "--to", "x", ok=False)
    assert "data version customers@1 not found" in refused.stderr
    assert "Traceback" not in refused.stderr


@pytest.mark.slow  # the server's first scan of a package imports scikit-learn
def test_the_same_model_in_two_projects(team: Team, tmp_path: Path) -> None:
    """Logged by a run in each project, and one MLflow model imported into each: the
    imported package is the same objects in both, and each project loads its own."""
    import pickle

    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression().fit([[0.0], [1.0], [2.0]], [0, 1, 1])
    mlflow_model = tmp_path / "mlflow-model"
    mlflow_model.mkdir()
    (mlflow_model / "model.pkl").write_bytes(pickle.dumps(model))
    (mlflow_model / "MLmodel").write_text(
        "flavors:\n  sklearn:\n    pickled_model: model.pkl\n    serialization_format: pickle\n"
    )
    imported = {}
    for name, project in (("alice", OWN), ("mallory", OTHER)):
        team.sdk(name)
        with cairn.start_run(experiment=f"e-{project}") as run:
            run.log_model(model, f"m-{project}")
        imported[name] = cairn.sdk.models().import_mlflow(
            mlflow_model, f"i-{project}", project=project
        )
    assert imported["alice"].files == imported["mallory"].files  # the same objects
    for ref in (f"m-{OTHER}/1", f"i-{OTHER}/1"):
        assert list(cairn.models.load(ref).predict([[2.0]])) == [1]
    with pytest.raises(NotFound, match=f"model 'i-{OWN}' not found"):
        cairn.models.load(f"i-{OWN}/1")


def test_a_projects_monitors_labels_and_evaluations_are_its_own(team: Team) -> None:
    """Monitors through the server: mallory, of another project, finds none of churn's,
    cannot evaluate or label it, nor make a monitor of its model or of its reference."""
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from cairn.core.monitor import MonitorResult

    frame = pd.DataFrame({"age": [1.0, 2.0, 3.0, 4.0], "spend": [0.5, 0.1, 0.9, 0.3]})
    team.sdk("alice")
    session = cairn.sdk.session()
    fitted = LogisticRegression().fit(frame, [0, 1, 0, 1])
    session.models.register(fitted, "churn-model", project=OWN)
    made = session.monitoring.create("churn-watch", "churn-model/1", frame)
    session.monitoring.run("churn-watch", current=frame)
    session.monitoring.log_labels("churn-model", ["r1"], [1])
    team.sdk("mallory")
    theirs = cairn.sdk.session().monitoring
    assert theirs.monitors.list_monitors() == []
    hidden = "not found"
    result = MonitorResult("churn-watch", 0, 1, 4, "drift", 1.0, ("age",), 0, made.reference)
    for attempt in (
        lambda: theirs.monitors.get_monitor("churn-watch"),
        lambda: theirs.run("churn-watch", current=frame),
        lambda: theirs.monitors.record_result(result),
        lambda: theirs.monitors.results("churn-watch"),
        lambda: theirs.log_labels("churn-model", ["r1"], [0]),
        lambda: theirs.monitors.labels("churn-model", ["r1"]),
        lambda: theirs.create("stolen", "churn-model/1", frame),
    ):
        with pytest.raises(NotFound, match=hidden):
            attempt()
    # A monitor of a model of its own, naming churn's reference: not an object it holds.
    cairn.sdk.session().models.register(fitted, "fraud-model", project=OTHER)
    forged = dataclasses.replace(made, name="forged", model="fraud-model/1")
    with pytest.raises(PermissionDenied, match=r"1 of its objects .* nor uploaded by it"):
        theirs.monitors.create_monitor(forged)
    assert [m.name for m in theirs.monitors.list_monitors()] == []
    team.sdk("alice")  # and churn's monitor and labels are as alice left them
    assert cairn.sdk.session().monitoring.monitors.labels("churn-model", ["r1"]) == {"r1": "1"}

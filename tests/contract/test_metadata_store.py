"""The MetadataStore contract, run against SQLite, PostgreSQL and a real Cairn server.

Every backend must behave the same, errors included: the HTTP client raises the classes
the SQL store raises. Tests isolate themselves with a fresh experiment each, because the
HTTP backend shares one server (and its database) across the module to stay fast.
"""

from __future__ import annotations

import dataclasses
import io
import math
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import blake3
import pytest

from cairn.core.access import Role
from cairn.core.artifact import ArtifactEntry
from cairn.core.data import DataKind, NewDataVersion
from cairn.core.identity import DEFAULT_PROJECT
from cairn.core.pipeline import CACHE_KEY, OUTPUT_DIGEST
from cairn.core.ports import ArtifactStore, MetadataStore
from cairn.core.run import Experiment, Lifecycle, NewRun, RunRecord, RunStatus, ViewType
from cairn.core.search import RunQuery
from cairn.errors import (
    AlreadyExists,
    AmbiguousReference,
    FilterSyntaxError,
    InvalidInput,
    InvalidState,
    NotFound,
    ParamConflict,
)
from cairn.stores.metadata import runs
from cairn.stores.metadata.data import SqlDataCatalog
from cairn.stores.metadata.identity import IdentityStore
from cairn.stores.metadata.sql import SqlMetadataStore
from server_process import running_server

DIGEST = "blake3:" + "ab" * 32


@dataclass
class Backend:
    store: MetadataStore
    seed: SqlMetadataStore  # the same database, reached directly, to arrange rare states
    # The server's objects, as the suite's account stores them; None: a metadata store
    # on its own, which records a manifest without looking at any artifact store.
    objects: ArtifactStore | None = None

    def stored(self, content: bytes) -> ArtifactEntry:
        """An object with ``content``, stored where the backend looks for it, as an entry
        (its path left empty)."""
        if self.objects is not None:
            self.objects.put_stream(io.BytesIO(content))
        return ArtifactEntry("", f"blake3:{blake3.blake3(content).hexdigest()}", len(content))


@pytest.fixture(scope="module")
def http_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    """A server with authentication on, and the token of a contributor (not an admin) in
    the default project: every write of the suite is decided for that account."""
    folder = tmp_path_factory.mktemp("server")
    db_url = f"sqlite:///{folder / 'cairn.db'}"
    seed = SqlMetadataStore(db_url)
    identity = IdentityStore(seed.engine)
    identity.add_user("contract-suite")
    identity.set_role(DEFAULT_PROJECT, "contract-suite", Role.CONTRIBUTOR)
    token = identity.create_token("contract-suite", "tests")[1]
    seed.close()
    with running_server(db_url, str(folder / "artifacts"), auth=True) as base_url:
        yield base_url, db_url, token


@pytest.fixture(params=["sqlite", "postgresql", "http"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        store = SqlMetadataStore(f"sqlite:///{tmp_path / 'cairn.db'}")
        yield Backend(store, store)
        store.close()
    elif request.param == "postgresql":
        store = SqlMetadataStore(request.getfixturevalue("postgres_url"))
        yield Backend(store, store)
        store.close()
    else:
        from cairn.client.http import HttpArtifactStore, HttpMetadataStore

        base_url, db_url, token = request.getfixturevalue("http_server")
        client, seed = HttpMetadataStore(base_url, token), SqlMetadataStore(db_url)
        objects = HttpArtifactStore(base_url, token)
        yield Backend(client, seed, objects)
        objects.close()
        client.close()
        seed.close()


@pytest.fixture
def store(backend: Backend) -> MetadataStore:
    return backend.store


@pytest.fixture
def experiment(store: MetadataStore) -> Experiment:
    return store.create_experiment(f"exp-{uuid.uuid4().hex[:10]}")


def new_run(
    experiment: Experiment, name: str = "run", start: int = 1_000, **extra: object
) -> NewRun:
    return NewRun(experiment.id, name, start, "ada", **extra)  # type: ignore[arg-type]


# experiments


def test_experiment_round_trip(store: MetadataStore) -> None:
    """An experiment is found by id, by name, and in the list."""
    created = store.create_experiment("churn-" + uuid.uuid4().hex[:6])
    assert store.get_experiment(created.id) == created
    assert store.get_experiment_by_name(created.name) == created
    assert created in store.list_experiments()


def test_duplicate_experiment_name_is_refused(store: MetadataStore, experiment: Experiment) -> None:
    with pytest.raises(AlreadyExists, match=experiment.name):
        store.create_experiment(experiment.name)


def test_unknown_experiment(store: MetadataStore) -> None:
    with pytest.raises(NotFound, match="experiment"):
        store.get_experiment(uuid.uuid4().hex)
    assert store.get_experiment_by_name("no-such-" + uuid.uuid4().hex) is None


# runs


def test_run_records_what_it_was_started_with(backend: Backend, experiment: Experiment) -> None:
    store = backend.store
    run = store.create_run(
        new_run(experiment, "baseline", git_commit="c0ffee", source="train.py", tags={"team": "a"})
    )
    # A server makes the account whose token starts a run its user, whatever the client says.
    user = "ada" if store is backend.seed else "contract-suite"
    assert (run.name, run.status, run.user, run.start_time) == (
        "baseline",
        RunStatus.RUNNING,
        user,
        1_000,
    )
    assert (run.git_commit, run.source, run.tags) == ("c0ffee", "train.py", {"team": "a"})
    assert run.end_time is None
    assert run.lifecycle is Lifecycle.ACTIVE
    assert store.get_run(run.id) == run


def test_nested_run_names_its_parent(store: MetadataStore, experiment: Experiment) -> None:
    parent = store.create_run(new_run(experiment))
    child = store.create_run(new_run(experiment, "fold-1", parent_id=parent.id))
    assert child.parent_id == parent.id


def test_unknown_parent_is_refused(store: MetadataStore, experiment: Experiment) -> None:
    with pytest.raises(NotFound, match="parent run"):
        store.create_run(new_run(experiment, parent_id=uuid.uuid4().hex))


def test_end_run(store: MetadataStore, experiment: Experiment) -> None:
    run = store.create_run(new_run(experiment))
    ended = store.end_run(run.id, RunStatus.FAILED, 5_000)
    assert (ended.status, ended.end_time) == (RunStatus.FAILED, 5_000)


def test_unknown_run(store: MetadataStore) -> None:
    missing = uuid.uuid4().hex
    with pytest.raises(NotFound, match=missing):
        store.get_run(missing)
    with pytest.raises(NotFound):
        store.get_metric_history(missing, "loss")
    with pytest.raises(NotFound):
        store.log_batch(missing, [("loss", 1.0, 0, 1)])


def test_run_id_prefix_resolves(store: MetadataStore, experiment: Experiment) -> None:
    run = store.create_run(new_run(experiment))
    assert store.resolve_run_id(run.id[:8]) == run.id
    assert store.resolve_run_id(run.id.upper()) == run.id


def test_short_or_malformed_prefix_is_refused(store: MetadataStore) -> None:
    with pytest.raises(InvalidInput, match="at least 8"):
        store.resolve_run_id("abc")
    with pytest.raises(InvalidInput, match="hexadecimal"):
        store.resolve_run_id("not-an-id-at-all")


def test_ambiguous_prefix_names_the_candidates(
    backend: Backend, experiment: Experiment, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = uuid.uuid4().hex[:8]
    ids = iter([prefix + "0" * 24, prefix + "1" * 24])
    monkeypatch.setattr(runs, "new_id", lambda: next(ids))
    for _ in range(2):
        backend.seed.create_run(new_run(experiment))
    with pytest.raises(AmbiguousReference, match=prefix + "0" * 24):
        backend.store.resolve_run_id(prefix)
    assert backend.store.resolve_run_id(prefix + "1") == prefix + "1" * 24


# logging


def test_batch_records_params_tags_and_metrics(
    store: MetadataStore, experiment: Experiment
) -> None:
    run = store.create_run(new_run(experiment))
    points = [("loss", 1 / (s + 1), s, 100 + s) for s in range(100)]
    store.log_batch(run.id, points, {"lr": "0.1"}, {"stage": "x"})
    stored = store.get_run(run.id)
    assert stored.params == {"lr": "0.1"}
    assert stored.tags == {"stage": "x"}
    assert stored.metrics["loss"].step == 99
    assert stored.metrics["loss"].value == pytest.approx(0.01)
    history = store.get_metric_history(run.id, "loss")
    assert [(m.step, m.value, m.timestamp) for m in history] == [(s, v, t) for _, v, s, t in points]


def test_latest_metric_is_the_highest_step_not_the_last_logged(
    store: MetadataStore, experiment: Experiment
) -> None:
    run = store.create_run(new_run(experiment))
    store.log_batch(run.id, [("auc", 0.9, 10, 1)])
    store.log_batch(run.id, [("auc", 0.5, 3, 2)])
    assert store.get_run(run.id).metrics["auc"].value == 0.9
    assert [m.step for m in store.get_metric_history(run.id, "auc")] == [3, 10]


def test_non_finite_metrics_are_kept(store: MetadataStore, experiment: Experiment) -> None:
    run = store.create_run(new_run(experiment))
    store.log_batch(run.id, [("x", math.nan, 0, 1), ("x", math.inf, 1, 1), ("x", -math.inf, 2, 1)])
    values = [m.value for m in store.get_metric_history(run.id, "x")]
    assert math.isnan(values[0])
    assert values[1:] == [math.inf, -math.inf]
    assert store.get_run(run.id).metrics["x"].value == -math.inf


def test_same_param_value_again_is_fine(store: MetadataStore, experiment: Experiment) -> None:
    run = store.create_run(new_run(experiment))
    store.log_batch(run.id, params={"lr": "0.1"})
    store.log_batch(run.id, params={"lr": "0.1"})
    assert store.get_run(run.id).params == {"lr": "0.1"}


def test_param_conflict_rejects_the_whole_batch(
    store: MetadataStore, experiment: Experiment
) -> None:
    run = store.create_run(new_run(experiment))
    store.log_batch(run.id, params={"lr": "0.1"})
    with pytest.raises(ParamConflict, match=r"'lr'.*'0\.1'.*'0\.2'"):
        store.log_batch(run.id, [("loss", 1.0, 0, 1)], {"lr": "0.2"}, {"t": "v"})
    stored = store.get_run(run.id)
    assert stored.params == {"lr": "0.1"}
    assert stored.metrics == {}
    assert stored.tags == {}


def test_over_long_keys_and_values_are_refused_whole(
    store: MetadataStore, experiment: Experiment
) -> None:
    run = store.create_run(new_run(experiment))
    with pytest.raises(InvalidInput, match="longer than 250"):
        store.log_batch(run.id, [("k" * 251, 1.0, 0, 1)], {"ok": "1"})
    with pytest.raises(InvalidInput, match="longer than 6000"):
        store.log_batch(run.id, [("loss", 1.0, 0, 1)], {"big": "x" * 6001})
    stored = store.get_run(run.id)
    assert stored.params == {}
    assert stored.metrics == {}


def test_retried_batch_is_stored_once(store: MetadataStore, experiment: Experiment) -> None:
    run = store.create_run(new_run(experiment))
    batch_id = uuid.uuid4().hex
    for _ in range(2):
        store.log_batch(run.id, [("loss", 0.5, 0, 1)], batch_id=batch_id)
    assert len(store.get_metric_history(run.id, "loss")) == 1


def test_deleted_run_refuses_writes_until_restored(
    store: MetadataStore, experiment: Experiment
) -> None:
    run = store.create_run(new_run(experiment))
    assert store.set_run_deleted(run.id, deleted=True).lifecycle is Lifecycle.DELETED
    with pytest.raises(InvalidState, match="restore"):
        store.log_batch(run.id, [("loss", 1.0, 0, 1)])
    store.set_run_deleted(run.id, deleted=False)
    store.log_batch(run.id, [("loss", 1.0, 0, 1)])
    assert "loss" in store.get_run(run.id).metrics


# search


@pytest.fixture
def population(store: MetadataStore, experiment: Experiment) -> list[str]:
    """30 runs: auc = i/30, lr in {'0', '1', '2'}, team 'Growth' for even i."""
    ids = []
    for i in range(30):
        run = store.create_run(new_run(experiment, f"r{i:02d}", start=1_000 + i))
        tags = {"team": "Growth" if i % 2 == 0 else "core"}
        store.log_batch(run.id, [("auc", i / 30, 0, 1)], {"lr": str(i % 3)}, tags)
        ids.append(run.id)
    return ids


def search(
    store: MetadataStore, experiment: Experiment, filter: str = "", **kw: object
) -> list[str]:
    query = RunQuery([experiment.id], filter, **kw)  # type: ignore[arg-type]
    return [r.name for r in store.search_runs(query).runs]


def test_filter_and_order_by_metric(
    store: MetadataStore, experiment: Experiment, population: list[str]
) -> None:
    names = search(
        store, experiment, "metrics.auc > 0.5 and params.lr = '1'", order_by=["metrics.auc DESC"]
    )
    assert names == ["r28", "r25", "r22", "r19", "r16"]


def test_default_order_is_newest_first(
    store: MetadataStore, experiment: Experiment, population: list[str]
) -> None:
    assert search(store, experiment, limit=3) == ["r29", "r28", "r27"]


def test_like_is_case_sensitive_and_ilike_is_not(
    store: MetadataStore, experiment: Experiment, population: list[str]
) -> None:
    assert len(search(store, experiment, "tags.team LIKE 'G%'")) == 15
    assert search(store, experiment, "tags.team LIKE 'g%'") == []
    assert len(search(store, experiment, "tags.team ILIKE 'g%'")) == 15


def test_in_and_attributes(
    store: MetadataStore, experiment: Experiment, population: list[str]
) -> None:
    assert len(search(store, experiment, "params.lr IN ('0', '2')")) == 20
    assert search(store, experiment, "attributes.run_name = 'r07'") == ["r07"]
    assert (
        len(
            search(
                store, experiment, "attributes.status = 'RUNNING' and attributes.start_time >= 1020"
            )
        )
        == 10
    )


def test_pages_cover_every_match_once_in_order(
    store: MetadataStore, experiment: Experiment, population: list[str]
) -> None:
    seen: list[str] = []
    token = None
    while True:
        page = store.search_runs(
            RunQuery(
                [experiment.id],
                "metrics.auc >= 0",
                ["params.lr ASC", "metrics.auc DESC"],
                limit=7,
                page_token=token,
            )
        )
        seen += [r.name for r in page.runs]
        token = page.next_page_token
        if token is None:
            break
    expected = sorted((f"r{i:02d}" for i in range(30)), key=lambda n: (int(n[1:]) % 3, -int(n[1:])))
    assert seen == expected


def test_runs_missing_the_order_key_come_last(store: MetadataStore, experiment: Experiment) -> None:
    without = store.create_run(new_run(experiment, "without", start=5))
    with_auc = store.create_run(new_run(experiment, "with", start=1))
    store.log_batch(with_auc.id, [("auc", 0.1, 0, 1)])
    for direction in ("ASC", "DESC"):
        assert search(store, experiment, order_by=[f"metrics.auc {direction}"]) == [
            "with",
            "without",
        ]
    assert without.id  # the run exists; it only sorts after


def test_deleted_runs_are_hidden_unless_asked_for(
    store: MetadataStore, experiment: Experiment, population: list[str]
) -> None:
    store.set_run_deleted(population[0], deleted=True)
    assert "r00" not in search(store, experiment, limit=100)
    assert search(store, experiment, view=ViewType.DELETED) == ["r00"]
    assert len(search(store, experiment, view=ViewType.ALL, limit=100)) == 30


def test_malformed_filter_points_at_the_token(store: MetadataStore, experiment: Experiment) -> None:
    with pytest.raises(FilterSyntaxError) as caught:
        search(store, experiment, "metrics.auc >> 0.9")
    message = str(caught.value)
    assert "position 13" in message
    assert "metrics.auc >> 0.9" in message
    assert "^" in message


def test_foreign_page_token_is_refused(
    store: MetadataStore, experiment: Experiment, population: list[str]
) -> None:
    page = store.search_runs(RunQuery([experiment.id], limit=5))
    assert page.next_page_token is not None
    with pytest.raises(InvalidInput, match="another search"):
        store.search_runs(
            RunQuery([experiment.id], "metrics.auc > 0", limit=5, page_token=page.next_page_token)
        )


# artifacts


def test_artifact_manifest(backend: Backend, experiment: Experiment) -> None:
    store = backend.store
    run = store.create_run(new_run(experiment))
    entries = [
        dataclasses.replace(backend.stored(content), path=path)
        for path, content in [("model.pkl", b"0123456789"), ("reports/a.txt", b"abc"),
                              ("reports/sub/b.txt", b"abcd")]
    ]  # fmt: skip
    store.add_artifacts(run.id, entries)
    assert store.list_artifacts(run.id) == entries
    assert [e.path for e in store.list_artifacts(run.id, "reports")] == [
        "reports/a.txt",
        "reports/sub/b.txt",
    ]
    retrained = dataclasses.replace(backend.stored(b"0123456789X"), path="model.pkl")
    store.add_artifacts(run.id, [retrained])
    assert store.list_artifacts(run.id, "model.pkl") == [retrained]


@pytest.mark.parametrize(
    ("paths", "refused"),
    [
        ([""], "entries[0].path"),  # an empty path would hide every other file
        (["reports/"], "entries[0].path"),
        (["a//b"], "entries[0].path"),
        (["./a"], "entries[0].path"),
        (["a/../b"], "entries[0].path"),
        (["/etc/passwd"], "entries[0].path"),
        (["a\\b"], "entries[0].path"),
        (["a\nb"], "entries[0].path"),
        (["x", "x/y"], "'x' is a file"),  # a file may not be a folder too
        (["model.pkl/weights"], "'model.pkl' is a file"),  # nor one stored before
        (["reports"], "'reports' is a file"),  # nor a folder stored before a file
    ],
)
def test_a_manifest_path_is_a_clean_relative_path_and_never_both_file_and_folder(
    backend: Backend, experiment: Experiment, paths: list[str], refused: str
) -> None:
    store = backend.store
    run = store.create_run(new_run(experiment))
    kept = [
        dataclasses.replace(backend.stored(b"kept"), path=path)
        for path in ("model.pkl", "reports/a.txt")
    ]
    store.add_artifacts(run.id, kept)
    entry = backend.stored(b"new")
    with pytest.raises(InvalidInput, match=re.escape(refused)):
        store.add_artifacts(run.id, [dataclasses.replace(entry, path=p) for p in paths])
    assert store.list_artifacts(run.id) == kept  # nothing of a refused manifest is kept


def test_paging_through_runs_that_lack_the_sort_key(
    store: MetadataStore, experiment: Experiment
) -> None:
    """Keyset paging stays exact across the runs without the metric (sorted last)."""
    for i in range(10):
        run = store.create_run(new_run(experiment, f"r{i}", start=i))
        if i % 2 == 0:
            store.log_batch(run.id, [("auc", float(i % 4), 0, 1)])
    names: list[str] = []
    token = None
    while True:
        query = RunQuery([experiment.id], order_by=["metrics.auc DESC"], limit=3, page_token=token)
        page = store.search_runs(query)
        names += [r.name for r in page.runs]
        token = page.next_page_token
        if token is None:
            break
    assert names == ["r6", "r2", "r8", "r4", "r0", "r9", "r7", "r5", "r3", "r1"]


def test_a_runs_inputs_are_the_data_versions_it_used(
    backend: Backend, store: MetadataStore, experiment: Experiment
) -> None:
    catalog = SqlDataCatalog(backend.seed.engine)
    name = f"customers-{uuid.uuid4().hex[:8]}"
    for digest in ("blake3:" + "1" * 64, "blake3:" + "2" * 64):
        catalog.add_version(NewDataVersion(name, digest, DataKind.FILE, "data/c.csv", 1, 10))
    run = store.create_run(new_run(experiment))
    assert store.get_run_inputs(run.id) == []
    assert store.log_inputs(run.id, [f"{name}@1", name]) == [f"{name}@1", f"{name}@2"]
    assert store.log_inputs(run.id, [f"{name}@1"]) == [f"{name}@1"]  # once is enough
    assert store.get_run_inputs(run.id) == [f"{name}@1", f"{name}@2"]
    with pytest.raises(NotFound, match=f"{name}@9 not found"):
        store.log_inputs(run.id, [f"{name}@9"])
    with pytest.raises(InvalidInput, match="expected a version number"):
        store.log_inputs(run.id, [f"{name}@x"])
    assert store.get_run_inputs(run.id) == [f"{name}@1", f"{name}@2"]


def test_runs_recorded_whole_read_back_as_if_logged_one_call_at_a_time(
    store: MetadataStore, experiment: Experiment
) -> None:
    parent = store.create_run(new_run(experiment, "pipeline"))
    one, out = "blake3:" + "1" * 64, "blake3:" + "2" * 64
    records = [
        RunRecord(
            new_run(experiment, "prepare", 2_000, parent_id=parent.id, tags={"step": "a"}),
            RunStatus.FINISHED, 2_500, params={"lr": "0.1"}, used=[one], produced=[out],
        ),
        RunRecord(
            new_run(experiment, "evaluate", 3_000, parent_id=parent.id),
            RunStatus.FAILED, 3_100, metrics=[("auc", 0.9, 0, 3_050)],
        ),
    ]  # fmt: skip
    recorded = store.record_runs(records)
    assert [r.name for r in recorded] == ["prepare", "evaluate"]
    first, second = (store.get_run(r.id) for r in recorded)
    assert (first.status, first.start_time, first.end_time) == (RunStatus.FINISHED, 2_000, 2_500)
    assert first.parent_id == parent.id
    assert dict(first.params) == {"lr": "0.1"}
    assert dict(first.tags) == {"step": "a"}
    assert store.get_run_lineage(first.id) == ([one], [out])
    assert (second.status, second.end_time) == (RunStatus.FAILED, 3_100)
    assert second.metrics["auc"].value == 0.9
    assert [m.value for m in store.get_metric_history(second.id, "auc")] == [0.9]
    assert store.record_runs([]) == []


def test_recording_runs_is_all_or_nothing(store: MetadataStore, experiment: Experiment) -> None:
    good = RunRecord(new_run(experiment, "good"), RunStatus.FINISHED, 2_000)
    cases = [
        (RunRecord(new_run(experiment, "x"), RunStatus.RUNNING, 2_000), InvalidInput,
         r"records\[1\]: status"),
        (RunRecord(new_run(experiment, "x"), RunStatus.FINISHED, 2_000, used=["md5:1"]),
         InvalidInput, r"records\[1\]: .*digest"),
        (RunRecord(new_run(experiment, "x", parent_id="0" * 32), RunStatus.FINISHED, 2_000),
         NotFound, "parent run"),
    ]  # fmt: skip
    for bad, error, message in cases:
        with pytest.raises(error, match=message):
            store.record_runs([good, bad])
    query = RunQuery(experiment_ids=(experiment.id,))
    assert store.search_runs(query).runs == []  # not even the good one


def test_a_runs_lineage_is_the_objects_it_used_and_produced(
    store: MetadataStore, experiment: Experiment
) -> None:
    run = store.create_run(new_run(experiment))
    assert store.get_run_lineage(run.id) == ([], [])
    one, two, out = ("blake3:" + c * 64 for c in "123")
    store.log_lineage(run.id, [two, one], [out])
    store.log_lineage(run.id, [one], [])  # once is enough
    assert store.get_run_lineage(run.id) == ([one, two], [out])
    with pytest.raises(InvalidInput, match="digest"):
        store.log_lineage(run.id, ["md5:abc"], [])
    with pytest.raises(NotFound):
        store.log_lineage("0" * 32, [one], [])
    assert store.get_run_lineage(run.id) == ([one, two], [out])


# pipelines: the runs nested in a run, and the step cache

CACHE = "blake3:" + "c" * 64


def step_run(
    experiment: Experiment,
    status: RunStatus = RunStatus.FINISHED,
    output: str | None = DIGEST,
    key: str = CACHE,
    start: int = 1_000,
    user: str = "ada",
) -> RunRecord:
    """A step run recorded whole, with its cache key and (unless None) its output."""
    tags = {CACHE_KEY: key} | ({} if output is None else {OUTPUT_DIGEST: output})
    new = NewRun(experiment.id, "step", start, user, tags=tags)
    return RunRecord(new, status, start + 500)


def test_the_cache_holds_the_step_run_recorded_last_under_a_key(
    store: MetadataStore, experiment: Experiment
) -> None:
    """The run started last; of those, the one recorded last: the first a search shows."""
    assert store.cached_output(experiment.id, CACHE) is None
    newest, _, same_start = store.record_runs(
        [step_run(experiment, start=3_000), step_run(experiment), step_run(experiment, start=3_000)]
    )
    store.record_runs([step_run(experiment, key="blake3:" + "d" * 64, start=5_000)])
    found = store.cached_output(experiment.id, CACHE)
    assert found == store.get_run(same_start.id)
    store.set_run_deleted(same_start.id, True)
    assert store.cached_output(experiment.id, CACHE) == store.get_run(newest.id)
    store.set_run_deleted(same_start.id, False)
    assert found.tags[OUTPUT_DIGEST] == DIGEST
    query = RunQuery((experiment.id,), f"tags.`{CACHE_KEY}` = '{CACHE}'", limit=1)
    assert store.search_runs(query).runs == [found]  # what a search shows first


def test_only_finished_runs_with_an_output_are_cached(
    store: MetadataStore, experiment: Experiment
) -> None:
    """Not one that runs, failed, records no output or an empty one, is deleted (until it
    is restored), or belongs to another experiment."""
    store.create_run(new_run(experiment, tags={CACHE_KEY: CACHE, OUTPUT_DIGEST: DIGEST}))
    elsewhere = store.create_experiment(f"exp-{uuid.uuid4().hex[:10]}")
    store.record_runs([
        step_run(experiment, RunStatus.FAILED), step_run(experiment, RunStatus.KILLED),
        step_run(experiment, output=None), step_run(experiment, output=""),
        step_run(elsewhere),
    ])  # fmt: skip
    assert store.cached_output(experiment.id, CACHE) is None
    (kept,) = store.record_runs([step_run(experiment, start=500)])
    assert store.cached_output(experiment.id, CACHE) == store.get_run(kept.id)
    store.set_run_deleted(kept.id, True)
    assert store.cached_output(experiment.id, CACHE) is None
    store.set_run_deleted(kept.id, False)
    assert store.cached_output(experiment.id, CACHE) == store.get_run(kept.id)


def test_a_step_run_logged_one_call_at_a_time_is_cached_once_it_finishes(
    store: MetadataStore, experiment: Experiment
) -> None:
    run = store.create_run(new_run(experiment, tags={CACHE_KEY: CACHE}))
    store.log_batch(run.id, [], {}, {OUTPUT_DIGEST: DIGEST})
    assert store.cached_output(experiment.id, CACHE) is None  # still running
    store.end_run(run.id, RunStatus.FINISHED, 2_000)
    assert store.cached_output(experiment.id, CACHE) == store.get_run(run.id)


def test_the_cache_narrowed_to_one_accounts_runs(backend: Backend, experiment: Experiment) -> None:
    store = backend.store
    (mine,) = store.record_runs([step_run(experiment)])
    (bobs,) = backend.seed.record_runs([step_run(experiment, user="bob")])  # recorded last
    assert store.cached_output(experiment.id, CACHE) == store.get_run(bobs.id)
    assert store.cached_output(experiment.id, CACHE, mine.user) == store.get_run(mine.id)
    assert store.cached_output(experiment.id, CACHE, "bob") == store.get_run(bobs.id)
    assert store.cached_output(experiment.id, CACHE, "carol") is None


def test_a_cache_lookup_names_what_is_malformed(
    store: MetadataStore, experiment: Experiment
) -> None:
    for key in ("", "not-a-key", "blake3:" + "C" * 64, "blake3:" + "c" * 63, CACHE + "\n"):
        with pytest.raises(InvalidInput, match=r"^cache_key: .*a step's cache key"):
            store.cached_output(experiment.id, key)
    for experiment_id in ("x", experiment.id[:8], experiment.id.upper()):
        with pytest.raises(InvalidInput, match=r"^experiment_id: .*whole id"):
            store.cached_output(experiment_id, CACHE)
    with pytest.raises(NotFound, match="experiment"):
        store.cached_output(uuid.uuid4().hex, CACHE)


def test_child_runs_are_the_runs_nested_in_a_run_newest_first(
    store: MetadataStore, experiment: Experiment
) -> None:
    parent = store.create_run(new_run(experiment, "pipeline"))
    first = store.create_run(new_run(experiment, "first", 3_000, parent_id=parent.id))
    second = store.create_run(new_run(experiment, "second", 2_000, parent_id=parent.id))
    store.create_run(new_run(experiment, "grandchild", parent_id=first.id))
    (recorded,) = store.record_runs(
        [RunRecord(new_run(experiment, "third", parent_id=parent.id), RunStatus.FINISHED, 2_000)]
    )
    store.set_run_deleted(second.id, True)
    assert [r.id for r in store.child_runs(parent.id)] == [first.id, recorded.id]
    every = store.child_runs(parent.id, ViewType.ALL)
    assert [r.name for r in every] == ["first", "second", "third"]
    assert every[1] == store.get_run(second.id)
    query = RunQuery(filter=f"attributes.parent_run_id = '{parent.id}'", view=ViewType.ALL)
    assert store.search_runs(query).runs == every
    assert [r.id for r in store.child_runs(parent.id, ViewType.DELETED)] == [second.id]
    assert store.child_runs(recorded.id) == []


def test_child_runs_of_what_is_not_a_run(store: MetadataStore) -> None:
    with pytest.raises(NotFound, match="run"):
        store.child_runs(uuid.uuid4().hex)
    for run_id in ("x", "0" * 8, "0" * 33):
        with pytest.raises(InvalidInput, match=r"^run_id: .*whole id"):
            store.child_runs(run_id)

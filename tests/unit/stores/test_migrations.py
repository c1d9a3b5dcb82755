"""Migrations create exactly the schema the code declares; newer schemas are refused."""

from __future__ import annotations

import importlib
import math
import sys
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, text

import cairn
from cairn.core.run import Run
from cairn.core.search import RunQuery
from cairn.errors import SchemaError
from cairn.pipelines.runner import PipelineResult
from cairn.sdk import run_pipeline
from cairn.stores.metadata.migrate import HEAD_REVISION, MIGRATIONS
from cairn.stores.metadata.schema import metadata
from cairn.stores.metadata.sql import SqlMetadataStore


def test_head_constant_matches_the_newest_migration() -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_current_head() == HEAD_REVISION


def test_migrations_build_the_declared_schema(database_url: str) -> None:
    url = database_url
    SqlMetadataStore(url).close()
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    engine.dispose()
    assert differences == []


def test_store_written_by_a_newer_cairn_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    SqlMetadataStore(url).close()
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(SchemaError, match=r"'9999'.*newer Cairn.*pip install -U"):
        SqlMetadataStore(url)


def test_opening_twice_is_a_no_op(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    first = SqlMetadataStore(url)
    experiment = first.create_experiment("kept")
    first.close()
    assert SqlMetadataStore(url).get_experiment(experiment.id) == experiment


def test_runs_stored_before_0002_read_back_whole_after_the_upgrade(database_url: str) -> None:
    url = database_url
    engine = _migrated(url, "upgrade", "0001")
    with engine.begin() as connection:
        for statement in _RUNS_AT_0001:
            connection.execute(text(statement))
        connection.execute(
            text(
                'INSERT INTO latest_metrics (run_pk, "key", step, "timestamp", value) '
                "VALUES (1, :key, :step, :timestamp, :value)"
            ),
            [
                {"key": "auc", "step": 3, "timestamp": 1700, "value": 0.9125},
                {"key": "loss", "step": 0, "timestamp": 5, "value": None},  # NULL is NaN
                {"key": "gain", "step": 0, "timestamp": 5, "value": -math.inf},
            ],
        )
    engine.dispose()

    store = SqlMetadataStore(url)
    run = store.get_run("a" * 32)
    assert run.params == {"lr": "0.1", "depth": "6"}
    assert run.tags == {"team": "growth"}
    assert run.metrics["auc"].value == 0.9125
    assert (run.metrics["auc"].step, run.metrics["auc"].timestamp) == (3, 1700)
    assert math.isnan(run.metrics["loss"].value)
    assert run.metrics["gain"].value == -math.inf
    assert store.get_run("b" * 32).params == {}
    found = store.search_runs(RunQuery(filter="params.depth = '6'", order_by=["metrics.auc"]))
    assert [r.id for r in found.runs] == ["a" * 32]
    assert found.runs[0] == run
    store.close()


_RUNS_AT_0001 = [
    "INSERT INTO experiments VALUES ('" + "e" * 32 + "', 'old', 'active', 1)",
    *(
        f"INSERT INTO runs (pk, id, experiment_id, name, status, start_time, user_name, "  # noqa: S608
        f"lifecycle) VALUES ({pk}, '{c * 32}', '{'e' * 32}', 'r{pk}', 'FINISHED', 1, 'u', "
        "'active')"
        for pk, c in ((1, "a"), (2, "b"))
    ),
    "INSERT INTO params VALUES (1, 'lr', '0.1'), (1, 'depth', '6')",
    "INSERT INTO tags VALUES (1, 'team', 'growth')",
]


def test_step_runs_stored_before_0011_fill_the_pipeline_tables(database_url: str) -> None:
    """The cache, pipeline runs and step runs are copied from the runs' tags by the rules
    the store keeps them by."""
    engine = _migrated(database_url, "upgrade", "0010")
    with engine.begin() as connection:
        for statement in _PIPELINE_AT_0010:
            connection.execute(text(statement))
        tags = [{"pk": pk, "key": k, "value": v} for pk, kv in _TAGS_AT_0010 for k, v in kv.items()]
        connection.execute(
            text('INSERT INTO tags (run_pk, "key", value) VALUES (:pk, :key, :value)'), tags
        )
    engine.dispose()

    store = SqlMetadataStore(database_url)
    experiment, pipeline = "e" * 32, "1" * 32
    assert _id(store.cached_output(experiment, _KEY)) == "3" * 32  # started last of those usable
    assert _id(store.cached_output(experiment, _KEY, "ada")) == "2" * 32
    assert [run.id for run in store.child_runs(pipeline)] == [c * 32 for c in "9765432"]
    with store.engine.connect() as connection:
        steps = connection.execute(text("SELECT run_id, state FROM step_runs")).all()
        pipelines = connection.execute(text("SELECT run_id, pipeline FROM pipeline_runs")).all()
    assert dict(steps) == {
        "2" * 32: "ran", "3" * 32: "cached", "4" * 32: "failed", "5" * 32: "running",
        "6" * 32: "ran", "7" * 32: "ran", "8" * 32: "ran", "9" * 32: "ran",
    }  # fmt: skip
    assert pipelines == [(pipeline, "churn")]
    store.close()


def test_a_pipeline_cached_before_0011_is_cached_after_the_upgrade(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run at 0010 (its runs and tags as that revision stored them), run again after the
    upgrade: every step comes from the cache."""
    (tmp_path / "upgraded_flow.py").write_text(_FLOW)
    monkeypatch.syspath_prepend(str(tmp_path))
    flow = importlib.import_module("upgraded_flow")
    try:
        cairn.configure(db=database_url)
        first = run_pipeline(flow.numbers.build())
        assert [s.state for s in first.steps] == ["ran", "ran"]
        cairn.sdk.close()
        _migrated(database_url, "downgrade", "0010").dispose()
        cairn.configure(db=database_url)  # opening the store upgrades it
        again = run_pipeline(flow.numbers.build())
    finally:
        cairn.sdk.close()  # before the database goes
        del sys.modules["upgraded_flow"]
    assert [s.state for s in again.steps] == ["cached", "cached"]
    assert _outputs(again) == _outputs(first)


def _outputs(result: PipelineResult) -> list[str | None]:
    return [None if step.output is None else step.output.digest for step in result.steps]


def _migrated(url: str, direction: str, revision: str) -> Engine:
    """An engine on the database, once Alembic took it ``direction`` to ``revision``."""
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as connection:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = connection
        getattr(command, direction)(config, revision)
    return engine


def _id(run: Run | None) -> str | None:
    return None if run is None else run.id


_KEY = "blake3:" + "c" * 64
_OUT = "blake3:" + "0" * 64
_PIPELINE_AT_0010 = [
    "INSERT INTO experiments VALUES ('" + "e" * 32 + "', 'churn', 'active', 1, 'default')",
    *(
        f"INSERT INTO runs (pk, id, experiment_id, name, status, start_time, user_name, "  # noqa: S608
        f"parent_id, lifecycle) VALUES ({pk}, '{str(pk) * 32}', '{'e' * 32}', 'r{pk}', "
        f"'{status}', {pk}, '{user}', {parent}, '{lifecycle}')"
        for pk, status, user, parent, lifecycle in (
            (1, "FINISHED", "ada", "NULL", "active"),  # the pipeline run
            (2, "FINISHED", "ada", f"'{'1' * 32}'", "active"),  # cached: ada's
            (3, "FINISHED", "bob", f"'{'1' * 32}'", "active"),  # cached: the newest
            (4, "FAILED", "bob", f"'{'1' * 32}'", "active"),
            (5, "RUNNING", "bob", f"'{'1' * 32}'", "active"),
            (6, "FINISHED", "bob", f"'{'1' * 32}'", "active"),  # an empty output
            (7, "FINISHED", "bob", f"'{'1' * 32}'", "active"),  # no output
            (8, "FINISHED", "bob", f"'{'1' * 32}'", "deleted"),
            (9, "FINISHED", "bob", f"'{'1' * 32}'", "active"),  # not a cache key
        )
    ),
]
_STEP = {"cairn.step": "make", "cairn.step.state": "ran", "cairn.cache_key": _KEY,
         "cairn.output.digest": _OUT}  # fmt: skip
_TAGS_AT_0010: list[tuple[int, dict[str, str]]] = [
    (1, {"cairn.run.kind": "pipeline", "cairn.pipeline": "churn", "team": "growth"}),
    (2, _STEP),
    (3, {**_STEP, "cairn.step.state": "cached"}),
    (4, _STEP),
    (5, _STEP),
    (6, {**_STEP, "cairn.output.digest": ""}),
    (7, {k: v for k, v in _STEP.items() if k != "cairn.output.digest"}),
    (8, _STEP),
    (9, {**_STEP, "cairn.cache_key": "not-a-key"}),
]
_FLOW = """
from cairn import pipeline, step

@step
def count(n: int):
    return list(range(n))

@step
def total(values):
    return {"total": float(sum(values))}

@pipeline
def numbers(n: int = 3):
    total(count(n))
"""

"""Migrations create exactly the schema the code declares; newer schemas are refused."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

from cairn.core.search import RunQuery
from cairn.errors import SchemaError
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
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as connection:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
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

"""A constraint the database enforces reaches the caller as a Cairn error, never as a
SQLAlchemy one: the store's boundary with the driver translates every statement's error
(``cairn.stores.metadata.driver_errors``), on SQLite and PostgreSQL alike."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import insert
from sqlalchemy.exc import SQLAlchemyError

from cairn.core.run import NewRun
from cairn.errors import AlreadyExists, CairnError, InvalidInput, InvalidState
from cairn.stores.metadata import runs
from cairn.stores.metadata import schema as t
from cairn.stores.metadata.engine import write_transaction
from cairn.stores.metadata.sql import SqlMetadataStore


@pytest.fixture
def store(database_url: str) -> Iterator[SqlMetadataStore]:
    opened = SqlMetadataStore(database_url)
    yield opened
    opened.close()


def test_a_run_id_taken_by_a_race_is_already_exists(
    store: SqlMetadataStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two runs given one id (as two writers racing would be) through a public method."""
    experiment = store.create_experiment("churn")
    taken = store.create_run(NewRun(experiment.id, "first", 1, None)).id
    monkeypatch.setattr(runs, "new_id", lambda: taken)
    with pytest.raises(AlreadyExists) as caught:
        store.create_run(NewRun(experiment.id, "second", 2, None))
    assert not isinstance(caught.value, SQLAlchemyError)
    assert caught.value.__cause__ is not None  # the driver's error, for the traceback
    monkeypatch.undo()
    assert store.create_run(NewRun(experiment.id, "third", 3, None)).name == "third"
    assert [r.name for r in store.child_runs(taken)] == []  # nothing of "second" was kept


@pytest.mark.parametrize(
    ("values", "error"),
    [
        ({"name": "default", "created_at": 0}, AlreadyExists),  # a unique key taken
        ({"name": None, "created_at": 0}, InvalidInput),  # NOT NULL
    ],
)
def test_a_constraint_on_projects_becomes_a_cairn_error(
    store: SqlMetadataStore, values: dict[str, object], error: type[CairnError]
) -> None:
    with pytest.raises(error), write_transaction(store.engine) as conn:
        conn.execute(insert(t.projects).values(**values))


def test_a_reference_to_nothing_is_invalid_state(store: SqlMetadataStore) -> None:
    """A foreign key violated: what the write refers to is gone (or never was)."""
    with (
        pytest.raises(InvalidState, match="does not exist"),
        write_transaction(store.engine) as conn,
    ):
        conn.execute(insert(t.params).values(run_pk=10**9, key="lr", value="0.1"))


def test_a_name_taken_keeps_the_writes_own_message(store: SqlMetadataStore) -> None:
    store.create_experiment("churn")
    with pytest.raises(AlreadyExists, match=r"^experiment 'churn' already exists$"):
        store.create_experiment("churn")

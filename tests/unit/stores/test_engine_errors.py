"""A database that refuses to write is the user's to fix: one ``StoreUnavailable`` naming
the database and what to do, from the store's boundary with the driver (a read-only
SQLite file is tried from the command line, in tests/security/test_cli_errors.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import make_url

from cairn.errors import StoreUnavailable
from cairn.stores.metadata.sql import SqlMetadataStore


def test_a_read_only_postgresql_says_so(postgres_url: str) -> None:
    """As a hot standby is, or a database with default_transaction_read_only on."""
    SqlMetadataStore(postgres_url).close()  # its tables, made while it accepts writes
    url = make_url(postgres_url)
    options = f"{url.query['options']} -cdefault_transaction_read_only=on"
    read_only = url.update_query_dict({"options": options}).render_as_string(hide_password=False)
    store = SqlMetadataStore(read_only)
    try:
        with pytest.raises(StoreUnavailable, match="accepts no writes") as caught:
            store.create_experiment("churn")
    finally:
        store.close()
    message = str(caught.value)
    assert message.startswith(f"metadata database {url.render_as_string(hide_password=True)}")
    assert "point CAIRN_DB at the primary" in message


def test_a_sqlite_database_that_cannot_grow_says_so(tmp_path: Path) -> None:
    """As on a full disk: here SQLite's own cap on the file's pages is reached."""
    database = tmp_path / "c.db"
    store = SqlMetadataStore(f"sqlite:///{database}")
    store.engine.dispose()

    @event.listens_for(store.engine, "connect")
    def cap(dbapi_connection: Any, _record: Any) -> None:
        pages = dbapi_connection.execute("PRAGMA page_count").fetchone()[0]
        dbapi_connection.execute(f"PRAGMA max_page_count = {pages}")

    try:
        with pytest.raises(StoreUnavailable, match="cannot grow") as caught:
            _fill(store)
    finally:
        store.close()
    assert str(caught.value).startswith(f"metadata database sqlite:///{database} cannot grow")
    assert f"Make room on the disk that holds {database}" in str(caught.value)


def _fill(store: SqlMetadataStore) -> None:
    for n in range(10_000):  # a few dozen pages, at most
        store.create_experiment(f"experiment-{n:05d}-" + "x" * 200)

"""Opening a database: SQLite tuned for durable concurrent use, or PostgreSQL via psycopg 3.

Every engine opened here translates its driver's errors into Cairn's, once, for every
statement (``driver_errors.py``); transactions are opened with ``write_transaction`` and
``read_connection``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Connection, Engine, Insert, Table, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from cairn.errors import InvalidInput, MissingExtra, StoreUnavailable
from cairn.stores.metadata.driver_errors import SQLITE_BUSY_TIMEOUT_MS, driver_error, what_to_check

_WRITE = "cairn_write"
_CONNECT_S = 10


def open_engine(url: str) -> Engine:
    """An engine for a SQLite or PostgreSQL URL (``postgresql://`` means psycopg 3).

    Raises:
        InvalidInput: the URL is not a database URL Cairn supports.
        MissingExtra: PostgreSQL was asked for without the ``postgres`` extra.
        StoreUnavailable: the folder of a SQLite database cannot be made.
    """
    engine = _engine(_parsed(url))
    event.listen(engine, "handle_error", driver_error)
    return engine


def _parsed(url: str) -> URL:
    try:
        return make_url(url)
    except ArgumentError as exc:
        raise InvalidInput(f"database URL {_hidden(url)!r}: {exc}") from exc


def _hidden(url: str) -> str:
    """The URL with its password hidden, for messages; a URL that does not parse is
    cut at its host (what precedes it may hold a password)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        scheme, _, rest = url.partition("://")
        return f"{scheme}://…@{rest.rpartition('@')[2]}" if "@" in rest else url


def _engine(parsed: URL) -> Engine:
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(parsed.database or "")
    if backend == "postgresql":
        if parsed.drivername in ("postgresql", "postgres"):
            parsed = parsed.set(drivername="postgresql+psycopg")
        # A server that does not answer is reported after this long, not the minutes a
        # TCP connect may take; a connect_timeout in the URL wins.
        waits = {} if "connect_timeout" in parsed.query else {"connect_timeout": _CONNECT_S}
        try:
            return create_engine(
                parsed, pool_pre_ping=True, pool_size=8, max_overflow=8, connect_args=waits
            )
        except (NoSuchModuleError, ModuleNotFoundError) as exc:
            raise MissingExtra(
                "PostgreSQL needs psycopg 3: pip install 'cairn-mlops[postgres]'"
            ) from exc
    shown = parsed.render_as_string(hide_password=True)
    raise InvalidInput(f"database URL {shown!r}: expected sqlite:///PATH or postgresql://…")


def _sqlite_engine(database: str) -> Engine:
    if database and database != ":memory:":
        try:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailable(
                f"metadata database sqlite:///{database} cannot be opened: its folder cannot "
                f"be made ({exc}). {what_to_check('sqlite', make_url(f'sqlite:///{database}'))}"
            ) from exc
    engine = create_engine(f"sqlite:///{database}")
    event.listen(engine, "connect", _configure_sqlite_connection)
    event.listen(engine, "begin", _begin_sqlite_transaction)
    return engine


def _configure_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin (see below).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers never wait for the writer
    cursor.execute("PRAGMA synchronous=FULL")  # a committed batch survives power loss
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _begin_sqlite_transaction(connection: Connection) -> None:
    # A write transaction takes the write lock up front: a deferred one that read first
    # could fail with SQLITE_BUSY on upgrade, which the busy timeout does not retry.
    mode = "IMMEDIATE" if connection.get_execution_options().get(_WRITE) else "DEFERRED"
    connection.exec_driver_sql(f"BEGIN {mode}")


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """One transaction that will write: committed on success, rolled back on any error."""
    with engine.connect().execution_options(**{_WRITE: True}) as connection, connection.begin():
        yield connection


@contextmanager
def read_connection(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as connection:
        yield connection


# Keys of PostgreSQL advisory locks: writes that check a name another table may take.
ALIAS_NAMES = 0xA11A5  # a model's aliases and the environments' names


def serialize(conn: Connection, key: int) -> None:
    """Queue the transaction behind others holding ``key`` until it ends (PostgreSQL; a
    SQLite write transaction is the only writer already)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def dialect_insert(conn: Connection, table: Table) -> Any:
    """An INSERT that knows ON CONFLICT: both SQLite and PostgreSQL have one."""
    insert: Any
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    statement: Insert = insert(table)
    return statement

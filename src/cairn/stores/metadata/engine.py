"""Opening a database: SQLite tuned for durable concurrent use, or PostgreSQL via psycopg 3.

This is the store's boundary with the database driver: the driver's errors that are the
user's to fix (a database that cannot be opened or reached, a value it cannot store) are
translated here, once, for every engine (``_driver_error``); the rest stay bugs.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Connection, Engine, Insert, Table, create_engine, event, text
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.exc import ArgumentError, DataError, NoSuchModuleError

from cairn.errors import InvalidInput, MissingExtra, StoreUnavailable

# Long enough for a concurrent writer's batch to commit; short enough to report a stuck lock.
SQLITE_BUSY_TIMEOUT_MS = 30_000
_WRITE = "cairn_write"
_CONNECT_S = 10
logger = logging.getLogger("cairn.stores")


def open_engine(url: str) -> Engine:
    """An engine for a SQLite or PostgreSQL URL (``postgresql://`` means psycopg 3).

    Raises:
        InvalidInput: the URL is not a database URL Cairn supports.
        MissingExtra: PostgreSQL was asked for without the ``postgres`` extra.
        StoreUnavailable: the folder of a SQLite database cannot be made.
    """
    engine = _engine(_parsed(url))
    event.listen(engine, "handle_error", _driver_error)
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
                f"be made ({exc}). {_what_to_check('sqlite', make_url(f'sqlite:///{database}'))}"
            ) from exc
    engine = create_engine(f"sqlite:///{database}")
    event.listen(engine, "connect", _configure_sqlite_connection)
    event.listen(engine, "begin", _begin_sqlite_transaction)
    return engine


def _driver_error(context: ExceptionContext) -> None:
    """Raise the Cairn error for a driver error the user can act on; return (the error
    goes on as it is) for the rest.

    Raises:
        StoreUnavailable: the database cannot be opened (a wrong URL, a file that is not a
            database, a server that is down), the connection to it was lost, or it refuses
            to write (a file this account may not write, a full disk, a lock held too
            long, a read-only server).
        InvalidInput: a value the database cannot store (an integer beyond 64 bits, text
            too long for its column, NUL in PostgreSQL text) got past the checks on input.
    """
    if context.is_pre_ping:  # the pool reconnects on its own; a failure is seen again
        return
    error = context.original_exception
    reason = (str(error).strip() or type(error).__name__).splitlines()[0]
    if (refusal := _refusal(error)) is not None:
        raise _refused(context, reason, *refusal) from error
    if context.connection is None or context.is_disconnect:
        raise _unavailable(context, reason) from error
    if isinstance(error, OverflowError) or isinstance(context.sqlalchemy_exception, DataError):
        # Input should have been refused before it came this far: the operator is told.
        logger.warning("a value the database cannot store reached it: %s", reason)
        raise InvalidInput(
            f"a value does not fit the metadata database ({reason}): a number beyond 64 "
            "bits, text longer than its field allows, or a NUL character"
        ) from error


def _refusal(error: BaseException) -> tuple[str, str | None] | None:
    """What the database says it cannot do, and what to do about it, where that is the
    user's to fix (a file this account may not write, a full disk, a read-only server)."""
    name = getattr(error, "sqlite_errorname", None)  # SQLITE_READONLY_DBMOVED, …
    if isinstance(name, str):
        return _SQLITE_REFUSALS.get("_".join(name.split("_")[:2]))
    state = getattr(error, "sqlstate", None)  # psycopg's SQLSTATE: 25006, or its class: 53
    if isinstance(state, str):
        return _POSTGRES_REFUSALS.get(state) or _POSTGRES_REFUSALS.get(state[:2])
    return None


# What the database cannot do, and what to do about it ({database}: its path, or name); no
# advice means: name the files this account may not write.
_SQLITE_REFUSALS: dict[str, tuple[str, str | None]] = {
    "SQLITE_READONLY": ("cannot be written", None),
    "SQLITE_PERM": ("cannot be written", None),
    "SQLITE_CANTOPEN": ("cannot be opened", None),
    "SQLITE_FULL": ("cannot grow", "Make room on the disk that holds {database}, then retry."),
    "SQLITE_IOERR": (
        "cannot be read or written",
        "Check the disk that holds {database} (the system log says more), then retry.",
    ),
    "SQLITE_BUSY": (
        "is locked",
        f"Another process has held its write lock for {SQLITE_BUSY_TIMEOUT_MS // 1000} s: "
        "let it finish (`fuser {database}` names it), then retry.",
    ),
}
_POSTGRES_REFUSALS: dict[str, tuple[str, str | None]] = {
    "25006": (
        "accepts no writes",
        "It is a standby, or default_transaction_read_only is on: point CAIRN_DB at the "
        "primary, or turn the setting off.",
    ),
    "42501": (
        "refuses this user",
        "Grant the user the privileges Cairn needs (it creates and alters its own tables), "
        "or set CAIRN_DB to another user.",
    ),
    "53": (
        "is out of resources",
        "Check the server's disk space, memory and max_connections, then retry.",
    ),
}


def _refused(
    context: ExceptionContext, reason: str, state: str, advice: str | None
) -> StoreUnavailable:
    url, shown = _url(context)
    database = url.database if url is not None and url.database else "the database"
    if advice is not None:
        fix = advice.format(database=database)
    else:
        fix = _unwritable_fix(database) or _what_to_check(context.dialect.name, url)
    return StoreUnavailable(f"metadata database {shown} {state}: {reason}. {fix}")


def _unwritable_fix(database: str) -> str | None:
    """What to make writable, when some of a SQLite database's files are not: SQLite
    makes its -wal and -shm files with the database's mode, so a database once read-only
    leaves them read-only after the database itself is writable again."""
    files = (database, f"{database}-wal", f"{database}-shm", os.path.dirname(database) or ".")
    unwritable = [f for f in files if os.path.exists(f) and not os.access(f, os.W_OK)]
    if not unwritable:
        return None
    named = " ".join(unwritable)
    them = "it" if len(unwritable) == 1 else "them"
    return (
        f"This account may not write {named}: make {them} writable (chmod u+w {named}), "
        "or set CAIRN_DB to another URL."
    )


def _unavailable(context: ExceptionContext, reason: str) -> StoreUnavailable:
    url, shown = _url(context)
    doing = "reached" if context.is_disconnect else "opened"
    hint = _what_to_check(context.dialect.name, url)
    return StoreUnavailable(f"metadata database {shown} cannot be {doing}: {reason}. {hint}")


def _url(context: ExceptionContext) -> tuple[URL | None, str]:
    """The database's URL, and how a message shows it (its password hidden)."""
    url = context.engine.url if context.engine is not None else None
    return url, url.render_as_string(hide_password=True) if url is not None else "(unknown URL)"


def _what_to_check(dialect: str, url: URL | None) -> str:
    if dialect == "sqlite":
        path = url.database if url is not None and url.database else "the path"
        return (
            f"Check that {path} is a SQLite database file (or does not exist yet) and that "
            "its folder is writable, or set CAIRN_DB to another URL."
        )
    at = f" at {url.host}:{url.port or 5432}" if url is not None and url.host else ""
    return (
        f"Check that PostgreSQL is running{at}, that the database exists and that the user "
        "name and password are right (CAIRN_DB), then retry."
    )


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

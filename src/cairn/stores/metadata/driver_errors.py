"""The store's boundary with the database driver: its errors become Cairn's here, once,
for every engine (``open_engine`` listens with ``driver_error``) and every statement.

A database that cannot be opened or reached, or refuses to write, is ``StoreUnavailable``;
a value it cannot store is ``InvalidInput``; a constraint it enforces is a Cairn error too
(``_constraint``): a unique key taken is an ``AlreadyExists`` (``unique_violation`` tells
it from a store's own), which a write gives its own message with ``already_exists``. What
is left (a statement the database cannot parse) stays a bug.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import URL
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import DataError, IntegrityError

from cairn.errors import AlreadyExists, InvalidInput, InvalidState, StoreUnavailable

# Long enough for a concurrent writer's batch to commit; short enough to report a stuck lock.
SQLITE_BUSY_TIMEOUT_MS = 30_000
logger = logging.getLogger("cairn.stores")


def unique_violation(error: BaseException) -> bool:
    """Whether ``error`` is the database's refusal of a unique key it holds already (a name
    taken, or a race another write won, which may be retried), as ``driver_error`` raised
    it: an ``AlreadyExists`` caused by the driver's error, not one a store raised itself."""
    cause = error.__cause__
    return isinstance(error, AlreadyExists) and cause is not None and _kind(cause) == "unique"


@contextmanager
def already_exists(message: str) -> Iterator[None]:
    """Report a unique key taken inside the block as ``AlreadyExists(message)``.

    Raises:
        AlreadyExists: ``message``, for a ``unique_violation`` inside the block.
    """
    try:
        yield
    except AlreadyExists as exc:
        if not unique_violation(exc):
            raise
        raise AlreadyExists(message) from exc


def driver_error(context: ExceptionContext) -> None:
    """Raise the Cairn error for a driver error the user can act on; return (the error
    goes on as it is) for the rest.

    Raises:
        StoreUnavailable: the database cannot be opened (a wrong URL, a file that is not a
            database, a server that is down), the connection to it was lost, or it refuses
            to write (a file this account may not write, a full disk, a lock held too
            long, a read-only server).
        InvalidInput: a value the database cannot store (an integer beyond 64 bits, text
            too long for its column, NUL in PostgreSQL text) got past the checks on input.
        AlreadyExists, InvalidState, InvalidInput: a constraint refused the write
            (see ``_constraint``).
    """
    if context.is_pre_ping:  # the pool reconnects on its own; a failure is seen again
        return
    error = context.original_exception
    reason = (str(error).strip() or type(error).__name__).splitlines()[0]
    if (refusal := _refusal(error)) is not None:
        raise _refused(context, reason, *refusal) from error
    if context.connection is None or context.is_disconnect:
        raise _unavailable(context, reason) from error
    if isinstance(context.sqlalchemy_exception, IntegrityError):
        raise _constraint(error, reason) from error
    if isinstance(error, OverflowError) or isinstance(context.sqlalchemy_exception, DataError):
        # Input should have been refused before it came this far: the operator is told.
        logger.warning("a value the database cannot store reached it: %s", reason)
        raise InvalidInput(
            f"a value does not fit the metadata database ({reason}): a number beyond 64 "
            "bits, text longer than its field allows, or a NUL character"
        ) from error


def _constraint(error: BaseException, reason: str) -> AlreadyExists | InvalidState | InvalidInput:
    """The Cairn error for a constraint the database enforced: a unique key taken (a name
    two writes raced for), a row referred to that is not there (removed meanwhile), or
    another (NOT NULL, CHECK, a trigger's refusal) a value got past the checks on input."""
    kind = _kind(error)
    if kind == "unique":
        return AlreadyExists(f"the metadata database holds this already ({reason})")
    if kind == "reference":
        return InvalidState(
            f"the metadata database refuses the write ({reason}): what it refers to does "
            "not exist (any more); look it up again"
        )
    logger.warning("a value the database refuses reached it: %s", reason)
    return InvalidInput(f"the metadata database refuses the write ({reason})")


def _kind(error: BaseException) -> str | None:
    name = getattr(error, "sqlite_errorname", None) or getattr(error, "sqlstate", None)
    return _CONSTRAINTS.get(name) if isinstance(name, str) else None


# SQLite's extended result codes and PostgreSQL's SQLSTATEs of the constraints above.
_CONSTRAINTS = {
    "SQLITE_CONSTRAINT_UNIQUE": "unique",
    "SQLITE_CONSTRAINT_PRIMARYKEY": "unique",
    "SQLITE_CONSTRAINT_FOREIGNKEY": "reference",
    "23505": "unique",
    "23503": "reference",
}


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
        fix = _unwritable_fix(database) or what_to_check(context.dialect.name, url)
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
    hint = what_to_check(context.dialect.name, url)
    return StoreUnavailable(f"metadata database {shown} cannot be {doing}: {reason}. {hint}")


def _url(context: ExceptionContext) -> tuple[URL | None, str]:
    """The database's URL, and how a message shows it (its password hidden)."""
    url = context.engine.url if context.engine is not None else None
    return url, url.render_as_string(hide_password=True) if url is not None else "(unknown URL)"


def what_to_check(dialect: str, url: URL | None) -> str:
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

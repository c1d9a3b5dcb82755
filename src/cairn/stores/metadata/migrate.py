"""Bringing a database to the schema this code expects, automatically, when a store opens.

The fast path (schema already current) is one query and imports nothing from Alembic.
An older schema is upgraded under a lock, so concurrent first opens are safe; a schema
newer than this code is refused rather than misread.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection, Engine, inspect, text

from cairn._version import __version__
from cairn.errors import SchemaError
from cairn.stores.metadata.engine import write_transaction

# The newest migration in migrations/versions; a test keeps the two in step.
HEAD_REVISION = "0013"
MIGRATIONS = Path(__file__).with_name("migrations")
_VERSION_TABLE = "alembic_version"
# Any constant works: it names the lock concurrent PostgreSQL migrators queue on.
_PG_MIGRATION_LOCK = 0x0CA1B


def current_revision(connection: Connection) -> str | None:
    if not inspect(connection).has_table(_VERSION_TABLE):
        return None
    query = text(f"SELECT version_num FROM {_VERSION_TABLE}")  # noqa: S608  # a constant
    return connection.execute(query).scalar()


def ensure_schema(engine: Engine, where: str) -> None:
    """Raises:
    SchemaError: the database was written by a newer Cairn.
    """
    with engine.connect() as connection:
        if current_revision(connection) == HEAD_REVISION:
            return
    with write_transaction(engine) as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})"))
        _upgrade(connection, where)


def _upgrade(connection: Connection, where: str) -> None:
    from alembic import command
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from alembic.util.exc import CommandError

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    found = current_revision(connection)  # again, now that we hold the lock
    if found is not None:
        try:
            ScriptDirectory.from_config(config).get_revision(found)
        except CommandError:
            raise SchemaError(
                f"the metadata store at {where} has schema revision {found!r}, which this "
                f"Cairn ({__version__}, schema {HEAD_REVISION}) does not know: it was written "
                "by a newer Cairn. Upgrade with: pip install -U cairn-mlops"
            ) from None
    command.upgrade(config, "head")

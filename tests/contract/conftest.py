"""Sessions on every backend, for the contract suites that test what users get.

A :class:`~cairn.session.Session` is what the SDK, the CLI and the server take their
stores from, so the suites build theirs the same way: over a SQLite file, over a
PostgreSQL schema (skipped with the reason where no server answers, a failure under
``CAIRN_REQUIRE_POSTGRES=1``), and through a real Cairn server with authentication on,
as an installation admin. The embedded databases are made once and a server is started
once per module; their tests share them, each through a session of its own, and name
what they make with ``unique``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cairn.config import load_settings
from cairn.core.actor import local_user
from cairn.session import Session
from databases import postgres_schema
from server_process import running_server

ADMIN = "contract-admin"  # the installation admin whose token the HTTP sessions hold


@dataclass(frozen=True)
class Server:
    base_url: str
    token: str  # an installation admin's


@pytest.fixture(scope="module")
def cairn_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server per module, with authentication on and an installation admin's token."""
    from cairn.stores.metadata.identity import IdentityStore
    from cairn.stores.metadata.sql import SqlMetadataStore

    folder = tmp_path_factory.mktemp("server")
    db_url = f"sqlite:///{folder / 'cairn.db'}"
    seed = SqlMetadataStore(db_url)
    try:
        identity = IdentityStore(seed.engine)
        identity.add_user(ADMIN, admin=True)
        token = identity.create_token(ADMIN, "contract suite")[1]
    finally:
        seed.close()
    with running_server(db_url, str(folder / "objects"), auth=True) as base_url:
        yield Server(base_url, token)


@pytest.fixture(scope="session")
def shared_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Cairn home of the embedded sessions: their SQLite database, audit key, objects."""
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="session")
def postgres_database(postgres_server: str) -> Iterator[str]:
    """A database URL whose tables live in a schema of their own, dropped afterwards."""
    yield from postgres_schema(postgres_server, "cairn_contract")


@pytest.fixture(params=["sqlite", "postgresql", "http"])
def session(request: pytest.FixtureRequest, shared_home: Path) -> Iterator[Session]:
    """A session over the shared SQLite file, the shared PostgreSQL schema, or the
    module's server; each acts as an installation admin (embedded use: the local account)."""
    given: dict[str, str] = {"home": str(shared_home), "artifacts": str(shared_home / "objects")}
    if request.param == "sqlite":
        given["db"] = f"sqlite:///{shared_home / 'cairn.db'}"
    elif request.param == "postgresql":
        given["db"] = request.getfixturevalue("postgres_database")
    else:
        server: Server = request.getfixturevalue("cairn_server")
        given |= {"uri": server.base_url, "token": server.token}
    settings = load_settings(cwd=shared_home, environ={}, **given)
    with Session(settings) as opened:
        yield opened


@pytest.fixture
def actor(session: Session) -> str:
    """Who the session's writes are recorded as."""
    return ADMIN if session.remote else local_user()


@pytest.fixture
def unique() -> Callable[[str], str]:
    """A name no other test of the module uses: ``unique("churn")`` -> ``churn-3f9a2c1b``."""

    def named(prefix: str) -> str:
        return f"{prefix}-{uuid.uuid4().hex[:8]}"

    return named

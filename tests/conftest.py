"""Shared fixtures: an isolated Cairn home per test, and PostgreSQL when it is reachable.

PostgreSQL tests run against ``CAIRN_TEST_POSTGRES_URL`` (default: the local server's
``test`` database), each in a schema of its own that is dropped afterwards. Where no
server answers they are skipped with the reason, unless ``CAIRN_REQUIRE_POSTGRES=1``
(set by ``.ci/run``), which turns the skip into a failure.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from databases import postgres_schema

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture(scope="session", autouse=True)
def session_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A Cairn home for what starts before a test's own (module-scoped servers): nothing a
    test does may reach the real ``~/.cairn``."""
    home = tmp_path_factory.mktemp("session-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CAIRN_HOME", str(home))
        yield home


@pytest.fixture(autouse=True)
def cairn_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test gets its own embedded store, and the SDK forgets it afterwards."""
    home = tmp_path / "cairn-home"
    monkeypatch.setenv("CAIRN_HOME", str(home))
    for name in ("CAIRN_URI", "CAIRN_TOKEN", "CAIRN_DB", "CAIRN_ARTIFACTS", "CAIRN_EXPERIMENT"):
        monkeypatch.delenv(name, raising=False)
    yield home
    from cairn import sdk

    sdk.close()
    if "cairn.cli.context" in sys.modules:  # the sessions of commands given --db
        sys.modules["cairn.cli.context"].close_direct()


@pytest.fixture(scope="session")
def postgres_server() -> str:
    url = os.environ.get("CAIRN_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    try:
        engine = create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # noqa: BLE001  # any failure means "not reachable"
        reason = f"PostgreSQL not reachable at {url} ({type(exc).__name__}: {exc})"
        if os.environ.get("CAIRN_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"{reason}; CAIRN_REQUIRE_POSTGRES=1 requires it")
        pytest.skip(f"{reason}; set CAIRN_TEST_POSTGRES_URL to run the PostgreSQL tests")
    return url


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A database URL whose tables live in a fresh schema, dropped after the test."""
    yield from postgres_schema(postgres_server, "cairn_test")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh metadata database on each backend: a SQLite file, then a PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'c.db'}"
    return str(request.getfixturevalue("postgres_url"))

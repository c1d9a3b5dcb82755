"""The SDK's session: one database engine per process, migrated once, or one connection
pool to a server; replaced whole by ``configure``; and garbage collection that keeps every
object something recorded."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from sklearn.linear_model import LogisticRegression

import cairn
import cairn.client.transport as transport_module
import cairn.config
import cairn.data
import cairn.models
import cairn.releases
import cairn.stores.metadata.engine as engine_module
import cairn.stores.metadata.sql as sql_module
from cairn import sdk
from cairn.errors import NotFound
from cairn.session import Session
from server_process import running_server


def _count_engines(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    opened: list[str] = []
    real = engine_module.create_engine

    def counting(url: object, *args: object, **kwargs: object) -> object:
        opened.append(str(url))
        return real(url, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(engine_module, "create_engine", counting)
    return opened


def _count_schema_checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    checked: list[str] = []
    real = sql_module.ensure_schema

    def counting(engine: object, where: str) -> None:
        checked.append(where)
        real(engine, where)  # type: ignore[arg-type]

    monkeypatch.setattr(sql_module, "ensure_schema", counting)
    return checked


def _dataset(folder: Path, name: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.csv").write_text("x,target\n1,0\n2,1\n")
    sdk.data().add(folder / f"{name}.csv", name)


def test_every_capability_of_the_sdk_shares_one_engine(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # the project folder data versions are added from
    opened, migrated = _count_engines(monkeypatch), _count_schema_checks(monkeypatch)
    with cairn.start_run(experiment="e") as run:
        run.log_metric("m", 1.0)
        run.log_model(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), name="m")
    _dataset(tmp_path / "work", "customers")
    cairn.data.get("customers@1")
    cairn.models.list_models()
    cairn.releases.create_environment("staging")
    cairn.releases.environments()
    cairn.releases.check("m/1", "staging")
    session = sdk.session()
    session.accounts.add_user("ada")
    assert [u.name for u in session.accounts.list_users() if u.name == "ada"] == ["ada"]
    assert session.audit_log.events(_everything())
    assert sdk.lineage("m/1").nodes
    assert session.collect_garbage(dry_run=True).removed == 0
    assert len(opened) == 1, opened
    assert len(migrated) == 1, migrated


def _everything() -> object:
    from cairn.stores.metadata.audit import EventQuery

    return EventQuery()


def test_a_session_through_a_server_shares_one_connection_pool(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    db_url, artifacts = f"sqlite:///{tmp_path / 'server.db'}", str(tmp_path / "objects")
    with running_server(db_url, artifacts) as url:
        pools: list[str] = []
        real = transport_module.HttpTransport.__init__

        def counting(self: object, base_url: str, token: str | None = None) -> None:
            pools.append(base_url)
            real(self, base_url, token)  # type: ignore[arg-type]

        monkeypatch.setattr(transport_module.HttpTransport, "__init__", counting)
        cairn.configure(uri=url)
        with cairn.start_run(experiment="e") as run:
            run.log_metric("m", 1.0)
        cairn.models.list_models()
        cairn.releases.environments()
        session = sdk.session()
        assert session.accounts.list_users() is not None
        assert session.data.datasets() == []
        assert len(pools) == 1, pools
        sdk.close()


def test_a_session_closes_what_it_opened_and_opens_nothing_it_was_not_asked_for(
    tmp_path: Path,
) -> None:
    settings = cairn.config.load_settings(home=str(tmp_path / "home"))
    with Session(settings) as session:
        assert session.data.status() == []  # status reads the workspace only
        assert not (tmp_path / "home" / "cairn.db").exists()
        session.tracking.list_experiments()
        assert (tmp_path / "home" / "cairn.db").exists()
    assert session._built == {}


def test_configure_moves_data_versions_to_the_new_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    cairn.configure(home=str(tmp_path / "a"))
    _dataset(tmp_path / "work", "customers")
    assert cairn.data.get("customers@1").is_relative_to(tmp_path / "a")
    cairn.configure(home=str(tmp_path / "b"))
    with pytest.raises(NotFound):
        cairn.data.get("customers@1")  # home b has no such dataset
    _dataset(tmp_path / "work", "customers")
    assert cairn.data.get("customers@1").is_relative_to(tmp_path / "b")


def test_gc_keeps_the_package_of_a_model_registered_without_a_run() -> None:
    model = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    sdk.models().register(model, "standalone")
    sdk.session().artifacts.put_stream(io.BytesIO(b"nothing refers to this"))
    collected = sdk.session().collect_garbage(grace_seconds=0)
    assert collected.removed == 1  # the orphan, and only it
    assert cairn.models.load("standalone/1").predict([[1.0]]).tolist() == [1]

"""The ModelRegistry contract, on SQLite, PostgreSQL and through a Cairn server.

Every backend numbers versions, resolves references, moves aliases and keeps model cards
alike, and refuses alike: a malformed name or alias is InvalidInput and an unknown model,
version or alias NotFound, on every backend, before anything is looked up or written.
Versions are registered as users register them (``Session.models``): the package is
stored first, then recorded by the registry, which a server reads and scans itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from cairn.core.model import ModelCard, ModelRef, ModelVersion, TrafficBatch
from cairn.core.run import NewRun
from cairn.errors import InvalidInput, NotFound
from cairn.session import Session

Unique = Callable[[str], str]


class Threshold:
    """A custom Python model: pickled, so its package is flagged by the scan."""

    def __init__(self, cut: float) -> None:
        self.cut = cut

    def predict(self, rows: Any) -> list[int]:
        return [int(row[0] > self.cut) for row in rows]


def register(session: Session, name: str, cut: float = 0.5, **extra: Any) -> ModelVersion:
    return session.models.register(Threshold(cut), name, **extra)


def test_versions_are_numbered_per_model_and_found_by_reference(
    session: Session, unique: Unique, actor: str
) -> None:
    registry = session.registry
    churn, fraud = unique("churn"), unique("fraud")
    one, two = register(session, churn, 0.3), register(session, churn, 0.7)
    other = register(session, fraud)
    assert (one.ref, two.ref, other.ref) == (f"{churn}/1", f"{churn}/2", f"{fraud}/1")
    assert one.digest != two.digest  # each version is its own package
    assert (one.flavor, one.created_by, one.run_id, one.flagged) == ("custom", actor, None, True)
    assert registry.resolve(ModelRef(churn)) == two  # the newest
    assert registry.resolve(ModelRef(churn, version=1)) == one
    assert [v.version for v in registry.list_versions(churn)] == [2, 1]
    model = registry.get_model(churn)
    assert (model.name, model.project, model.latest_version, dict(model.aliases)) == (
        churn, "default", 2, {})  # fmt: skip
    listed = [m.name for m in registry.list_models() if m.name in (churn, fraud)]
    assert listed == sorted([churn, fraud])  # by name
    loaded = session.models.load(f"{churn}/1", trust=True)  # flagged: trusted explicitly
    assert loaded.predict([[0.5], [0.1]]) == [1, 0]


def test_a_version_is_registered_in_the_project_asked_for_which_must_exist(
    session: Session, unique: Unique
) -> None:
    project, name = unique("team"), unique("churn")
    with pytest.raises(NotFound, match=f"project '{project}' not found"):
        register(session, name, project=project)
    with pytest.raises(NotFound):
        session.registry.get_model(name)  # nothing half-written
    session.accounts.add_project(project)
    register(session, name, project=project)
    register(session, name, project="default")  # an existing model keeps its project
    assert session.registry.get_model(name).project == project


def test_a_version_made_by_a_run_names_it_and_is_listed_among_its_artifacts(
    session: Session, unique: Unique
) -> None:
    metadata = session.metadata
    experiment = metadata.create_experiment(unique("exp"))
    run = metadata.create_run(NewRun(experiment.id, "train", 1_000, "ada"))
    version = register(session, unique("churn"), run_id=run.id)
    assert version.run_id == run.id
    listed = metadata.list_artifacts(run.id, f"models/{version.name}/1")
    assert len(listed) == len(version.files)
    assert {e.digest for e in listed} == {f.digest for f in version.files}
    with pytest.raises(NotFound, match=r"run '0+' not found"):
        register(session, unique("churn"), run_id="0" * 32)


def test_aliases_are_set_moved_and_deleted(session: Session, unique: Unique) -> None:
    registry, name = session.registry, unique("churn")
    register(session, name)
    register(session, name)
    assert registry.set_alias(name, "champion", 1).aliases == ("champion",)
    assert registry.resolve(ModelRef(name, alias="champion")).version == 1
    moved = registry.set_alias(name, "champion", 2)
    assert (moved.version, moved.aliases) == (2, ("champion",))
    registry.set_alias(name, "challenger", 2)
    assert dict(registry.get_model(name).aliases) == {"challenger": 2, "champion": 2}
    assert [v.aliases for v in registry.list_versions(name)] == [("challenger", "champion"), ()]
    registry.delete_alias(name, "champion")
    assert dict(registry.get_model(name).aliases) == {"challenger": 2}
    with pytest.raises(NotFound, match=r"no alias 'champion' \(its aliases: challenger"):
        registry.resolve(ModelRef(name, alias="champion"))
    with pytest.raises(NotFound, match=r"no alias 'champion' \(its aliases: challenger\)"):
        registry.delete_alias(name, "champion")
    with pytest.raises(NotFound, match=r"has no version 9 \(its versions: 1 to 2\)"):
        registry.set_alias(name, "champion", 9)
    assert "champion" not in registry.get_model(name).aliases  # nothing half-written


@pytest.mark.parametrize(
    ("alias", "says"),
    [("latest", "is reserved"), ("Champion", "lowercase letters"), ("1", "lowercase letters")],
)
def test_a_malformed_or_reserved_alias_is_refused(
    session: Session, unique: Unique, alias: str, says: str
) -> None:
    name = unique("churn")
    register(session, name)
    with pytest.raises(InvalidInput, match=says):
        session.registry.set_alias(name, alias, 1)
    assert session.registry.get_model(name).aliases == {}


def test_an_unknown_model_or_version_is_not_found_whatever_is_asked(
    session: Session, unique: Unique
) -> None:
    registry, name = session.registry, unique("nope")
    asks: dict[str, Callable[[], object]] = {
        "get": lambda: registry.get_model(name),
        "versions": lambda: registry.list_versions(name),
        "resolve": lambda: registry.resolve(ModelRef(name)),
        "resolve a version": lambda: registry.resolve(ModelRef(name, version=1)),
        "resolve an alias": lambda: registry.resolve(ModelRef(name, alias="champion")),
        "set an alias": lambda: registry.set_alias(name, "champion", 1),
        "delete an alias": lambda: registry.delete_alias(name, "champion"),
        "card": lambda: registry.get_card(name, 1),
        "set a card": lambda: registry.set_card(name, 1, ModelCard()),
    }
    for what, ask in asks.items():
        with pytest.raises(NotFound, match=f"^model '{name}' not found") as refused:
            ask()
        assert "project" not in str(refused.value), what
    known = unique("churn")
    register(session, known)
    with pytest.raises(NotFound, match=r"has no version 2 \(its versions: 1 to 1\)"):
        registry.resolve(ModelRef(known, version=2))
    with pytest.raises(NotFound, match="has no version 2"):
        registry.get_card(known, 2)


@pytest.mark.parametrize("name", ["bad name", "-churn", "churn/1", "ünïcode", "x" * 129])
def test_a_malformed_model_name_is_invalid_input_on_every_call(session: Session, name: str) -> None:
    registry = session.registry
    asks: dict[str, Callable[[], object]] = {
        "register": lambda: register(session, name),
        "get": lambda: registry.get_model(name),
        "versions": lambda: registry.list_versions(name),
        "resolve": lambda: registry.resolve(ModelRef(name, version=1)),
        "set an alias": lambda: registry.set_alias(name, "champion", 1),
        "delete an alias": lambda: registry.delete_alias(name, "champion"),
        "card": lambda: registry.get_card(name, 1),
        "set a card": lambda: registry.set_card(name, 1, ModelCard()),
    }
    for what, ask in asks.items():
        with pytest.raises(InvalidInput, match="expected 1 to 128 letters") as refused:
            ask()
        assert "model name" in str(refused.value), what


def test_a_versions_card_starts_empty_and_is_replaced_whole(
    session: Session, unique: Unique
) -> None:
    registry, name = session.registry, unique("churn")
    card = {"intended_use": "Retention offers.", "metrics": {"auc": 0.91}}
    register(session, name, card=card)
    register(session, name)
    assert registry.get_card(name, 1) == ModelCard("Retention offers.", metrics={"auc": 0.91})
    assert registry.get_card(name, 2) == ModelCard()
    written = ModelCard(limitations="EU customers only.", training_data="customers@3")
    assert registry.set_card(name, 1, written) == written
    assert registry.get_card(name, 1) == written  # the first card's fields are gone
    padded = ModelCard(intended_use="  Churn offers.\n", metrics={"auc": 1})
    assert registry.set_card(name, 2, padded) == ModelCard("Churn offers.", metrics={"auc": 1.0})
    assert registry.get_card(name, 2) == ModelCard("Churn offers.", metrics={"auc": 1.0})


@pytest.mark.parametrize(
    ("card", "says"),
    [
        (ModelCard(metrics={"auc": float("nan")}), r"card.metrics\['auc'\]: expected a finite"),
        (ModelCard(metrics={"": 1.0}), "is no metric name"),
        (ModelCard(intended_use="a\x00b"), "card.intended_use"),
        (ModelCard(limitations="x" * (64 * 1024 + 1)), "longer than"),
    ],
)
def test_a_card_that_cannot_be_kept_is_refused_as_written(
    session: Session, unique: Unique, card: ModelCard, says: str
) -> None:
    registry, name = session.registry, unique("churn")
    register(session, name)
    kept = ModelCard(intended_use="Retention offers.")
    registry.set_card(name, 1, kept)
    with pytest.raises(InvalidInput, match=says):
        registry.set_card(name, 1, card)
    assert registry.get_card(name, 1) == kept


def test_traffic_is_indexed_by_version_and_read_back_by_window(
    session: Session, unique: Unique, actor: str, tmp_path: Any
) -> None:
    registry = session.registry
    churn = unique("churn")
    register(session, churn)
    register(session, churn, 0.7)
    files = []
    for index in range(3):
        path = tmp_path / f"batch-{index}.parquet"
        path.write_bytes(f"batch {index}".encode())
        files.append(session.artifacts.put_file(path).digest)
    logged = [
        registry.log_traffic(TrafficBatch(churn, 1, 1_000, 1_900, 5, files[0])),
        registry.log_traffic(TrafficBatch(churn, 2, 2_000, 2_900, 7, files[1])),
        registry.log_traffic(TrafficBatch(churn, 2, 3_000, 3_900, 2, files[2])),
    ]
    assert {(b.logged_by, b.logged_at > 0) for b in logged} == {(actor, True)}
    window = registry.traffic(churn, 1_500, 3_000)  # overlapping: all three
    assert [(b.version, b.rows, b.digest) for b in window] == [
        (1, 5, files[0]), (2, 7, files[1]), (2, 2, files[2])]  # fmt: skip
    assert [b.digest for b in registry.traffic(churn, 2_950)] == [files[2]]
    assert registry.traffic(churn, 4_000) == []


@pytest.mark.parametrize(("field", "batch"), [
    ("version", {"version": 3}),  # no such version: NotFound below
    ("last_at", {"first_at": 5, "last_at": 4}),
    ("rows", {"rows": 0}),
    ("digest", {"digest": "blake3:short"}),
])  # fmt: skip
def test_traffic_that_cannot_be_is_refused(
    session: Session, unique: Unique, tmp_path: Any, field: str, batch: dict[str, Any]
) -> None:
    churn = unique("churn")
    register(session, churn)
    path = tmp_path / "b.parquet"
    path.write_bytes(b"x")
    digest = session.artifacts.put_file(path).digest
    given = {"model": churn, "version": 1, "first_at": 1, "last_at": 2, "rows": 1,
             "digest": digest, **batch}  # fmt: skip
    expected = NotFound if field == "version" else InvalidInput
    with pytest.raises(expected):
        session.registry.log_traffic(TrafficBatch(**given))
    assert session.registry.traffic(churn) == []

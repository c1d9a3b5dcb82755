"""The ModelRegistry contract, on SQLite and PostgreSQL: numbering, aliases, what a
not-found names, the lineage edge and audit event of a registration, and permissions."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from cairn.core.access import Principal, Role
from cairn.core.actor import acting_as, on_behalf_of
from cairn.core.authorizer import Authorizer
from cairn.core.model import (
    Finding,
    ModelCard,
    ModelRef,
    NewModelVersion,
    PackageFile,
    TrafficBatch,
)
from cairn.core.run import NewRun
from cairn.errors import InvalidInput, NotFound, PermissionDenied
from cairn.models.registry import RegistryService
from cairn.stores.artifacts.fsspec import FsspecArtifactStore
from cairn.stores.metadata.audit import AuditLog, EventQuery
from cairn.stores.metadata.identity import IdentityStore
from cairn.stores.metadata.models import SqlModelRegistry
from cairn.stores.metadata.sql import SqlMetadataStore

FILE = PackageFile("model.pkl", "blake3:" + "a" * 64, 10)


@pytest.fixture
def store(database_url: str) -> Iterator[SqlMetadataStore]:
    opened = SqlMetadataStore(database_url)
    yield opened
    opened.close()


def _as(principal: Principal, store: SqlMetadataStore, objects: Path) -> RegistryService:
    """The registry service, deciding for ``principal``."""
    registry, held = SqlModelRegistry(store.engine), FsspecArtifactStore(str(objects))
    return RegistryService(registry, Authorizer(principal), store, held)


def _new(name: str = "churn", run_id: str | None = None, **extra: object) -> NewModelVersion:
    digest = "blake3:" + "b" * 64
    return NewModelVersion(name, digest, "sklearn", (FILE,), {"format": 1}, run_id, **extra)  # type: ignore[arg-type]


def test_versions_are_numbered_per_model_and_found_by_reference(store: SqlMetadataStore) -> None:
    registry = SqlModelRegistry(store.engine)
    one = registry.register_version(_new(), "default")
    two = registry.register_version(
        _new(findings=(Finding("model.pkl", ("os.system",)),)), "default"
    )
    other = registry.register_version(_new("fraud"), "default")
    assert (one.ref, two.ref, other.ref) == ("churn/1", "churn/2", "fraud/1")
    assert (two.flagged, one.flagged) == (True, False)
    assert registry.resolve(ModelRef("churn")).version == 2
    assert registry.resolve(ModelRef("churn", version=1)).files == (FILE,)
    registry.set_alias("churn", "champion", 1)
    assert registry.resolve(ModelRef("churn", alias="champion")).aliases == ("champion",)
    registry.set_alias("churn", "champion", 2)  # moved
    assert registry.get_model("churn").aliases == {"champion": 2}
    assert [v.version for v in registry.list_versions("churn")] == [2, 1]
    assert [m.name for m in registry.list_models()] == ["churn", "fraud"]
    registry.delete_alias("churn", "champion")
    with pytest.raises(NotFound, match="no alias 'champion'"):
        registry.resolve(ModelRef("churn", alias="champion"))
    with pytest.raises(NotFound, match=r"no alias 'staging' .*none"):
        registry.delete_alias("churn", "staging")
    with pytest.raises(NotFound, match="no version 9"):
        registry.set_alias("churn", "champion", 9)
    with pytest.raises(InvalidInput, match="reserved"):
        registry.set_alias("churn", "latest", 1)
    # The store cannot know who asks: it names no model (the registry service suggests
    # those the caller may read).
    with pytest.raises(NotFound, match=r"^model 'nope' not found \(see `cairn models list`\)$"):
        registry.get_model("nope")


def test_a_registration_records_its_run_edge_and_audit_event(store: SqlMetadataStore) -> None:
    registry = SqlModelRegistry(store.engine)
    experiment = store.create_experiment("e")
    run = store.create_run(NewRun(experiment.id, "train", 1, "ada"))
    with acting_as("ada"):
        version = registry.register_version(_new(run_id=run.id), "default")
        registry.set_alias("churn", "champion", 1)
    assert version.run_id == run.id
    events = AuditLog(store.engine).events(EventQuery(limit=100))
    mine = [(e.content.action, e.content.object_id) for e in events if e.content.actor == "ada"]
    assert mine == [("model.version.create", "churn/1"), ("model.alias.set", "churn")]
    with pytest.raises(NotFound, match=r"run '0+' not found"):
        registry.register_version(_new(run_id="0" * 32), "default")
    assert registry.get_model("churn").latest_version == 1  # nothing half-written


def test_racing_registrations_take_distinct_numbers(store: SqlMetadataStore) -> None:
    registry = SqlModelRegistry(store.engine)
    registry.register_version(_new(), "default")  # the model exists: racers only number
    made: list[int] = []

    def register() -> None:
        made.append(registry.register_version(_new(), "default").version)

    threads = [threading.Thread(target=register) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(made) == [2, 3, 4, 5, 6, 7]


def test_readers_see_and_writers_register_as_their_role_allows(
    store: SqlMetadataStore, tmp_path: Path
) -> None:
    registry = SqlModelRegistry(store.engine)
    registry.register_version(_new(), "default")
    viewer = Principal("vic", roles={"default": Role.VIEWER})
    outsider = Principal("olga", roles={})
    as_viewer = _as(viewer, store, tmp_path)
    assert as_viewer.resolve(ModelRef("churn")).version == 1
    with pytest.raises(PermissionDenied):
        as_viewer.set_alias("churn", "champion", 1)
    with pytest.raises(PermissionDenied):
        as_viewer.register_version(_new(), "default")
    with pytest.raises(NotFound, match=r"model 'nope' not found \(models: churn\)"):
        as_viewer.resolve(ModelRef("nope"))  # suggesting what the caller may read
    as_outsider = _as(outsider, store, tmp_path)
    assert as_outsider.list_models() == []
    with on_behalf_of(viewer), pytest.raises(PermissionDenied):
        registry.delete_alias("churn", "champion")


def test_a_model_the_caller_may_not_read_is_not_found_as_one_that_does_not_exist(
    store: SqlMetadataStore, tmp_path: Path
) -> None:
    """Word for word, on reads (by name, alias or version) and on writes: the answer names
    no project and suggests no model."""
    registry = SqlModelRegistry(store.engine)
    registry.register_version(_new(), "default")
    registry.set_alias("churn", "champion", 1)
    outsider = Principal("olga", roles={})
    as_outsider = _as(outsider, store, tmp_path)
    asks = {
        "get": lambda name: as_outsider.get_model(name),
        "resolve an alias": lambda name: as_outsider.resolve(ModelRef(name, alias="x")),
        "resolve a version": lambda name: as_outsider.resolve(ModelRef(name, version=9)),
        "versions": lambda name: as_outsider.list_versions(name),
        "card": lambda name: as_outsider.get_card(name, 1),
        "set an alias": lambda name: as_outsider.set_alias(name, "x", 1),
        "delete an alias": lambda name: as_outsider.delete_alias(name, "champion"),
        "set a card": lambda name: as_outsider.set_card(name, 1, ModelCard()),
    }
    for what, ask in asks.items():
        answers = []
        for name in ("churn", "nope"):
            with pytest.raises(NotFound) as refused:
                ask(name)
            answers.append(refused.value.message.replace(name, "<name>"))
        assert answers[0] == answers[1], what
        assert "default" not in answers[0], what  # no project named


def test_a_versions_card_is_replaced_whole_and_audited(store: SqlMetadataStore) -> None:
    registry = SqlModelRegistry(store.engine)
    registry.register_version(_new(), "default")
    assert registry.get_card("churn", 1) == ModelCard()
    with acting_as("ada"):
        registry.set_card("churn", 1, ModelCard(intended_use="Retention.", metrics={"auc": 0.9}))
        registry.set_card("churn", 1, ModelCard(limitations="EU only."))
    assert registry.get_card("churn", 1) == ModelCard(limitations="EU only.")
    events = AuditLog(store.engine).events(EventQuery(action="model.card.set"))
    assert [(e.content.object_id, e.content.actor) for e in events] == [("churn/1", "ada")] * 2
    with pytest.raises(NotFound, match="no version 2"):
        registry.get_card("churn", 2)
    with pytest.raises(NotFound, match="no version 2"):
        registry.set_card("churn", 2, ModelCard())


def test_the_services_writes_are_decided_again_in_their_transaction(
    store: SqlMetadataStore, tmp_path: Path
) -> None:
    """The service decides on the principal it was given; the store, inside the write's
    transaction, on the account as it stands then: a role taken away meanwhile counts."""
    identity = IdentityStore(store.engine)
    identity.add_project("churn")
    identity.add_user("mia")
    identity.set_role("churn", "mia", Role.MAINTAINER)
    SqlModelRegistry(store.engine).register_version(_new(), "churn")
    as_mia = _as(identity.principal("mia"), store, tmp_path)  # as a server holds her
    assert as_mia.set_alias("churn", "champion", 1).aliases == ("champion",)
    identity.set_role("churn", "mia", Role.VIEWER)  # meanwhile, an admin demotes her
    with pytest.raises(PermissionDenied, match="'manage' permission in project 'churn'"):
        as_mia.set_alias("churn", "challenger", 1)
    with pytest.raises(PermissionDenied, match="'write' permission in project 'churn'"):
        as_mia.register_version(_new(), "churn")
    model = as_mia.get_model("churn")
    assert (model.aliases, model.latest_version) == ({"champion": 1}, 1)


def test_traffic_names_only_an_object_the_caller_holds(
    store: SqlMetadataStore, tmp_path: Path
) -> None:
    """A contributor who names an object it neither uploaded nor may read where a project
    holds it is refused (the file would become readable to the model's readers); its own
    upload is taken, and the model holds it from then on."""
    identity = IdentityStore(store.engine)
    identity.add_project("churn")
    identity.add_user("mia")
    identity.set_role("churn", "mia", Role.CONTRIBUTOR)
    SqlModelRegistry(store.engine).register_version(_new(), "churn")
    objects = FsspecArtifactStore(str(tmp_path))
    source = tmp_path / "traffic.parquet"
    source.write_bytes(b"someone else's bytes")
    digest = objects.put_file(source).digest  # stored, but not hers
    mia = identity.principal("mia")
    as_mia = RegistryService(SqlModelRegistry(store.engine), Authorizer(mia), store, objects)
    batch = TrafficBatch("churn", 1, 1, 2, 1, digest)
    with pytest.raises(
        PermissionDenied,
        match="neither in a project where it has the 'read' permission nor uploaded",
    ):
        as_mia.log_traffic(batch)
    assert as_mia.traffic("churn") == []
    store.record_upload(digest, mia)  # she sends the bytes herself
    assert as_mia.log_traffic(batch).logged_by == "mia"
    identity.add_user("vic")
    identity.set_role("churn", "vic", Role.VIEWER)
    as_vic = RegistryService(SqlModelRegistry(store.engine),
                             Authorizer(identity.principal("vic")), store, objects)  # fmt: skip
    with pytest.raises(PermissionDenied, match="'write' permission in project 'churn'"):
        as_vic.log_traffic(batch)

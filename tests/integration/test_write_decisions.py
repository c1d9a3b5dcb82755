"""Writes are decided inside their own transaction, for the principal acting now.

A principal authenticated a moment ago may have lost its role, or its account, since: the
write must be refused, leave nothing behind, and leave no audit event of a change.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cairn.core.access import Principal, Role
from cairn.core.actor import acting_as
from cairn.core.authorizer import Authorizer
from cairn.core.run import NewRun, RunStatus
from cairn.errors import NotFound, PermissionDenied, Unauthenticated
from cairn.stores.metadata.audit import AuditLog, EventQuery
from cairn.stores.metadata.identity import IdentityStore
from cairn.stores.metadata.sql import SqlMetadataStore
from cairn.tracking.metadata import MetadataService


@pytest.fixture
def stores(database_url: str) -> Iterator[tuple[SqlMetadataStore, IdentityStore]]:
    store = SqlMetadataStore(database_url)
    identity = IdentityStore(store.engine)
    identity.add_project("churn")
    identity.add_user("carol")
    identity.set_role("churn", "carol", Role.CONTRIBUTOR)
    yield store, identity
    store.close()


def _actions(store: SqlMetadataStore) -> list[str]:
    return [e.content.action for e in AuditLog(store.engine).events(EventQuery(limit=1000))]


def _as(store: SqlMetadataStore, principal: Principal) -> MetadataService:
    return MetadataService(store, store, Authorizer(principal))


def test_a_role_taken_away_after_authentication_stops_the_next_write(
    stores: tuple[SqlMetadataStore, IdentityStore],
) -> None:
    store, identity = stores
    carol = identity.principal("carol")  # what the server holds for this request
    experiment = _as(store, carol).create_experiment("e", "churn")
    run = _as(store, carol).create_run(NewRun(experiment.id, "r", 1, "carol"))
    identity.set_role("churn", "carol", Role.VIEWER)  # meanwhile, an admin demotes her
    before = _actions(store)
    with pytest.raises(PermissionDenied, match="'write' permission in project 'churn'"):
        _as(store, carol).log_batch(run.id, [("loss", 0.5, 1, 1)], {"lr": "0.1"})
    assert _actions(store) == before
    identity.set_role("churn", "carol", None)  # then removes her
    before = _actions(store)
    # Churn is no longer hers to read: its run and experiment are not there, for her.
    with pytest.raises(NotFound, match=f"^run '{run.id}' not found"):
        _as(store, carol).log_batch(run.id, [("loss", 0.5, 1, 1)], {"lr": "0.1"})
    with pytest.raises(NotFound, match=f"^run '{run.id}' not found"):
        _as(store, carol).end_run(run.id, RunStatus.FINISHED, 2)
    with pytest.raises(NotFound, match=f"^experiment '{experiment.id}' not found"):
        _as(store, carol).create_run(NewRun(experiment.id, "r2", 1, "carol"))
    assert store.get_metric_history(run.id, "loss") == []
    assert store.get_run(run.id).params == {}
    assert store.get_run(run.id).status == RunStatus.RUNNING
    assert _actions(store) == before  # nothing changed, nothing recorded as changed


def test_a_disabled_account_cannot_write_with_a_principal_it_already_had(
    stores: tuple[SqlMetadataStore, IdentityStore],
) -> None:
    store, identity = stores
    carol = identity.principal("carol")
    identity.set_disabled("carol", True)
    with pytest.raises(Unauthenticated, match="'carol' is disabled"):
        _as(store, carol).create_experiment("e", "churn")
    assert store.get_experiment_by_name("e") is None


def test_a_role_given_after_authentication_counts_at_once(
    stores: tuple[SqlMetadataStore, IdentityStore],
) -> None:
    store, identity = stores
    identity.add_project("fraud")
    carol = identity.principal("carol")
    identity.set_role("fraud", "carol", Role.CONTRIBUTOR)
    assert _as(store, carol).create_experiment("f", "fraud").project == "fraud"


def test_identity_changes_are_decided_in_their_transaction_too(
    stores: tuple[SqlMetadataStore, IdentityStore],
) -> None:
    _, identity = stores
    identity.add_user("dave")
    identity.set_role("churn", "dave", Role.ADMIN)
    dave = identity.principal("dave")
    with acting_as("dave", principal=dave):
        identity.set_role("churn", "carol", Role.VIEWER)  # a project admin manages members
        with pytest.raises(PermissionDenied, match="only installation admins"):
            identity.add_user("eve")
        with pytest.raises(PermissionDenied, match="only 'carol' and installation admins"):
            identity.create_token("carol", "laptop")
        identity.create_token("dave", "laptop")  # their own
    identity.set_role("churn", "dave", Role.CONTRIBUTOR)
    with acting_as("dave", principal=dave), pytest.raises(PermissionDenied, match="administer"):
        identity.set_role("churn", "carol", Role.ADMIN)  # no longer a project admin
    assert {m.user: m.role for m in identity.members("churn")} == {
        "carol": Role.VIEWER,
        "dave": Role.CONTRIBUTOR,
    }
    assert [u.name for u in identity.list_users()] == ["carol", "dave"]

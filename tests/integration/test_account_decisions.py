"""The accounts service decides for its caller, on SQLite and PostgreSQL: another
account's tokens are no caller's business but their owner's and the admins' (another's
token is not there, word for word as one that does not exist), a project's members are its
admins' to change and its readers' to list, and a project the caller may not read is not
there for it. Refused, a call leaves nothing behind and no audit event of a change; a
change is decided again on the caller's standing as it is when it is written.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from cairn.accounts.service import AccountsService
from cairn.core.access import Role
from cairn.core.authorizer import Authorizer
from cairn.core.identity import Membership
from cairn.errors import NotFound, PermissionDenied
from cairn.stores.metadata.audit import AuditLog, EventQuery
from cairn.stores.metadata.identity import IdentityStore
from cairn.stores.metadata.sql import SqlMetadataStore

# Roles in churn; "mallory" is a contributor of fraud only.
PEOPLE = {"carol": Role.CONTRIBUTOR, "vic": Role.VIEWER, "ada": Role.ADMIN}


@dataclass
class World:
    store: SqlMetadataStore
    identity: IdentityStore

    def as_(self, name: str) -> AccountsService:
        """The service for ``name``, as the server builds it for a request of theirs."""
        return AccountsService(self.identity, Authorizer(self.identity.principal(name)))

    def actions(self) -> list[str]:
        return [e.content.action for e in AuditLog(self.store.engine).events(EventQuery())]


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    store = SqlMetadataStore(database_url)
    identity = IdentityStore(store.engine)
    for project in ("churn", "fraud"):
        identity.add_project(project)
    for name, role in PEOPLE.items():
        identity.add_user(name)
        identity.set_role("churn", name, role)
    identity.add_user("mallory")
    identity.set_role("fraud", "mallory", Role.CONTRIBUTOR)
    identity.add_user("bob")
    yield World(store, identity)
    store.close()


def test_a_token_is_the_callers_own_unless_an_admin_names_another(world: World) -> None:
    carol = world.as_("carol")
    own, _ = carol.create_token(name="laptop")  # no account named: the caller's
    assert own.user == "carol"
    assert carol.list_tokens() == [own]  # its own, not everyone's
    before = world.actions()
    with pytest.raises(PermissionDenied, match="only 'bob' and installation admins may"):
        carol.create_token("bob", "stolen")
    with pytest.raises(PermissionDenied, match="list the tokens of 'bob'"):
        carol.list_tokens("bob")
    assert world.identity.list_tokens("bob") == []
    assert world.actions() == before


def test_another_accounts_token_is_not_there_for_the_caller(world: World) -> None:
    bobs, _ = world.identity.create_token("bob", "laptop")
    before = world.actions()
    with pytest.raises(NotFound) as theirs:
        world.as_("carol").revoke_token(bobs.id)
    with pytest.raises(NotFound) as nobodys:
        world.as_("carol").revoke_token("0123456789abcdef")
    assert str(theirs.value) == str(nobodys.value).replace("0123456789abcdef", bobs.id)
    assert world.identity.list_tokens("bob")[0].revoked_at is None
    assert world.actions() == before
    assert world.as_("bob").revoke_token(bobs.id).revoked_at is not None  # the owner may


@pytest.mark.parametrize("who", ["vic", "carol"])
def test_only_a_project_admin_changes_its_members(world: World, who: str) -> None:
    before = world.actions()
    with pytest.raises(PermissionDenied, match="'administer' permission in project 'churn'"):
        world.as_(who).grant_role("churn", "bob", Role.ADMIN)
    with pytest.raises(PermissionDenied, match="'administer' permission in project 'churn'"):
        world.as_(who).remove_member("churn", "ada")
    assert world.actions() == before
    ada = world.as_("ada")
    assert ada.grant_role("churn", "bob", Role.VIEWER) == Membership("churn", "bob", Role.VIEWER)
    ada.remove_member("churn", "bob")
    assert [m.user for m in ada.members("churn")] == sorted(PEOPLE)


def test_a_project_the_caller_may_not_read_is_not_there(world: World) -> None:
    mallory = world.as_("mallory")
    assert mallory.list_projects() == ["fraud"]
    for call in (lambda project: mallory.members(project),
                 lambda project: mallory.grant_role(project, "mallory", Role.ADMIN),
                 lambda project: mallory.remove_member(project, "carol")):  # fmt: skip
        with pytest.raises(NotFound) as churn:
            call("churn")
        with pytest.raises(NotFound) as nowhere:
            call("nowhere")
        assert str(churn.value) == str(nowhere.value).replace("nowhere", "churn")
    assert world.identity.members("churn") == world.as_("ada").members("churn")
    assert "mallory" not in [m.user for m in world.identity.members("churn")]


def test_accounts_and_projects_are_the_installation_admins(world: World) -> None:
    ada = world.as_("ada")  # a project's admin, not the installation's
    before = world.actions()
    for call in (ada.list_users, lambda: ada.add_user("eve"), lambda: ada.add_project("eve"),
                 lambda: ada.disable_user("bob"), lambda: ada.enable_user("bob")):  # fmt: skip
        with pytest.raises(PermissionDenied, match="only installation admins may"):
            call()
    assert world.actions() == before
    assert not world.identity.principal("bob").is_admin


def test_a_change_is_decided_on_the_callers_standing_when_it_is_written(world: World) -> None:
    ada = world.as_("ada")  # built while she administers churn
    world.identity.set_role("churn", "ada", Role.VIEWER)  # meanwhile, she is demoted
    before = world.actions()
    with pytest.raises(PermissionDenied, match="'administer' permission in project 'churn'"):
        ada.grant_role("churn", "bob", Role.ADMIN)
    assert "bob" not in [m.user for m in world.identity.members("churn")]
    assert world.actions() == before

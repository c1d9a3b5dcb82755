"""The accounts service's contract, on SQLite, PostgreSQL and through a Cairn server, for
an installation admin: accounts, API tokens, projects and the roles held in them are made,
listed and changed alike, and refused alike (a malformed name is InvalidInput, a name
taken AlreadyExists, an unknown account, token or project NotFound). Who else may do what
is the security suites' (``tests/security``, ``tests/integration/test_access_control.py``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from cairn.core.access import Role
from cairn.core.clock import now_ms
from cairn.core.identity import AccountKind, Membership, User, parse_token
from cairn.errors import AlreadyExists, InvalidInput, NotFound
from cairn.session import Session

Unique = Callable[[str], str]


def test_an_account_is_made_listed_and_disabled(session: Session, unique: Unique) -> None:
    accounts = session.accounts
    ada, bot, root = unique("ada"), unique("ci-bot"), unique("root")
    before = now_ms()
    made = accounts.add_user(ada)
    assert made == User(ada, AccountKind.USER, False, False, made.created_at)
    assert before <= made.created_at <= now_ms()
    service = accounts.add_user(bot, AccountKind.SERVICE)
    admin = accounts.add_user(root, admin=True)
    assert (service.kind, service.is_admin, admin.kind, admin.is_admin) == (
        AccountKind.SERVICE, False, AccountKind.USER, True)  # fmt: skip
    listed = accounts.list_users()
    assert [u.name for u in listed] == sorted(u.name for u in listed)  # by name
    assert {u.name: u for u in listed if u.name in (ada, bot, root)} == {
        ada: made, bot: service, root: admin}  # fmt: skip
    disabled = accounts.set_disabled(ada, True)
    assert (disabled.name, disabled.disabled) == (ada, True)
    assert {u.name: u.disabled for u in accounts.list_users()}[ada] is True
    assert accounts.set_disabled(ada, False).disabled is False


def test_an_account_name_is_taken_once(session: Session, unique: Unique) -> None:
    accounts, name = session.accounts, unique("ada")
    accounts.add_user(name)
    for kind in AccountKind:
        with pytest.raises(AlreadyExists, match=f"user '{name}' already exists"):
            accounts.add_user(name, kind)
    assert [u.name for u in accounts.list_users()].count(name) == 1


@pytest.mark.parametrize("name", ["Ada", "ada smith", "-ada", "", "a" * 64, "ädä"])
def test_a_malformed_account_or_project_name_is_refused(session: Session, name: str) -> None:
    accounts = session.accounts
    with pytest.raises(InvalidInput, match=r"user name .*expected 1 to 63 lower-case"):
        accounts.add_user(name)
    with pytest.raises(InvalidInput, match=r"project name .*expected 1 to 63 lower-case"):
        accounts.add_project(name)
    assert name not in [u.name for u in accounts.list_users()]
    assert name not in accounts.list_projects()


def test_an_unknown_account_is_not_found(session: Session, unique: Unique) -> None:
    accounts, name = session.accounts, unique("nobody")
    says = f"user '{name}' not found"
    with pytest.raises(NotFound, match=says):
        accounts.set_disabled(name, True)
    with pytest.raises(NotFound, match=says):
        accounts.create_token(name, "laptop")
    with pytest.raises(NotFound, match=says):
        accounts.set_role("default", name, Role.VIEWER)
    assert accounts.list_tokens(name) == []


def test_a_token_is_shown_once_listed_without_its_secret_and_revoked(
    session: Session, unique: Unique
) -> None:
    accounts, ada = session.accounts, unique("ada")
    accounts.add_user(ada)
    expires = now_ms() + 86_400_000
    laptop, text = accounts.create_token(ada, "laptop", expires)
    ci, _ = accounts.create_token(ada, "ci")
    assert parse_token(text)[0] == laptop.id  # cairn_<id>_<secret>
    assert (laptop.user, laptop.name, laptop.expires_at, laptop.revoked_at) == (
        ada, "laptop", expires, None)  # fmt: skip
    assert accounts.list_tokens(ada) == [laptop, ci]  # oldest first
    assert {laptop, ci} <= set(accounts.list_tokens())  # an admin lists everyone's
    revoked = accounts.revoke_token(laptop.id)
    assert revoked.revoked_at is not None
    assert revoked == dataclasses.replace(laptop, revoked_at=revoked.revoked_at)
    assert accounts.revoke_token(laptop.id) == revoked  # revoked once, when first asked
    assert [t.revoked_at is None for t in accounts.list_tokens(ada)] == [False, True]


def test_a_token_must_expire_in_the_future_and_be_known_to_be_revoked(
    session: Session, unique: Unique
) -> None:
    accounts, ada = session.accounts, unique("ada")
    accounts.add_user(ada)
    with pytest.raises(InvalidInput, match="expected a time in the future"):
        accounts.create_token(ada, "stale", now_ms() - 1_000)
    assert accounts.list_tokens(ada) == []
    with pytest.raises(NotFound, match="token '0123456789abcdef' not found"):
        accounts.revoke_token("0123456789abcdef")


def test_a_project_is_made_once_and_listed(session: Session, unique: Unique) -> None:
    accounts, project = session.accounts, unique("fraud")
    assert accounts.add_project(project) == project
    with pytest.raises(AlreadyExists, match=f"project '{project}' already exists"):
        accounts.add_project(project)
    listed = accounts.list_projects()
    assert {"default", project} <= set(listed)
    assert listed == sorted(listed)
    assert accounts.members(project) == []


def test_a_role_in_a_project_is_given_changed_and_taken_away(
    session: Session, unique: Unique
) -> None:
    accounts = session.accounts
    project, ada, bob = unique("fraud"), unique("ada"), unique("bob")
    accounts.add_project(project)
    for name in (ada, bob):
        accounts.add_user(name)
    assert accounts.set_role(project, ada, Role.CONTRIBUTOR) == Membership(
        project, ada, Role.CONTRIBUTOR)  # fmt: skip
    accounts.set_role(project, bob, Role.VIEWER)
    accounts.set_role(project, ada, Role.APPROVER)  # replaces the role held
    assert accounts.members(project) == sorted(
        [Membership(project, ada, Role.APPROVER), Membership(project, bob, Role.VIEWER)],
        key=lambda m: m.user,
    )
    assert accounts.set_role(project, ada, None) is None
    assert accounts.members(project) == [Membership(project, bob, Role.VIEWER)]
    assert accounts.set_role(project, ada, None) is None  # holding none: nothing to take
    assert all(m.user != bob for m in accounts.members("default"))  # roles are per project


def test_a_role_in_an_unknown_project_is_not_found(session: Session, unique: Unique) -> None:
    accounts, project, ada = session.accounts, unique("nowhere"), unique("ada")
    accounts.add_user(ada)
    for role in (Role.VIEWER, None):
        with pytest.raises(NotFound, match=f"project '{project}' not found"):
            accounts.set_role(project, ada, role)
    assert project not in accounts.list_projects()


def test_a_role_is_granted_and_a_member_removed_an_account_disabled_and_enabled(
    session: Session, unique: Unique
) -> None:
    accounts, project, ada = session.accounts, unique("fraud"), unique("ada")
    accounts.add_project(project)
    accounts.add_user(ada)
    granted = accounts.grant_role(project, ada, Role.MAINTAINER)
    assert granted == Membership(project, ada, Role.MAINTAINER)
    assert accounts.members(project) == [granted]
    assert accounts.remove_member(project, ada) is None
    assert accounts.members(project) == []
    assert accounts.disable_user(ada).disabled is True
    assert accounts.enable_user(ada).disabled is False
    nowhere = unique("nowhere")
    with pytest.raises(NotFound, match=f"project '{nowhere}' not found"):
        accounts.remove_member(nowhere, ada)

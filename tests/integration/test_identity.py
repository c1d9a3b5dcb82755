"""Accounts, tokens, projects and roles on SQLite and PostgreSQL, every change audited."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from cairn.core.access import Role
from cairn.core.identity import AccountKind
from cairn.errors import AlreadyExists, InvalidInput, NotFound, Unauthenticated
from cairn.stores.metadata.audit import AuditLog, EventQuery
from cairn.stores.metadata.identity import IdentityStore
from cairn.stores.metadata.sql import SqlMetadataStore


@pytest.fixture
def identity(database_url: str) -> Iterator[IdentityStore]:
    store = SqlMetadataStore(database_url)
    yield IdentityStore(store.engine)
    store.close()


def _actions(identity: IdentityStore) -> list[str]:
    return [e.content.action for e in AuditLog(identity.engine).events(EventQuery())]


def test_a_token_is_shown_once_and_authenticates_its_account(identity: IdentityStore) -> None:
    identity.add_user("alice")
    identity.set_role("default", "alice", Role.CONTRIBUTOR)
    token, text = identity.create_token("alice", "laptop")
    assert text.startswith(f"cairn_{token.id}_")
    stored = identity.list_tokens("alice")
    assert [(t.id, t.name) for t in stored] == [(token.id, "laptop")]
    secret = text.removeprefix(f"cairn_{token.id}_")
    assert len(secret) == 43
    assert secret not in repr(stored)  # only a digest of the secret is kept
    alice = identity.authenticate(text)
    assert (alice.name, alice.is_admin, dict(alice.roles)) == (
        "alice",
        False,
        {"default": Role.CONTRIBUTOR},
    )
    assert _actions(identity) == ["user.create", "project.set_role", "token.create"]


@pytest.mark.parametrize(
    "spoil",
    ["malformed", "unknown", "wrong-secret", "revoked", "expired", "disabled"],
)
def test_bad_tokens_are_refused_and_the_attempt_is_audited(
    identity: IdentityStore, spoil: str
) -> None:
    identity.add_user("bob", AccountKind.SERVICE)
    expires = int(time.time() * 1000) + 200 if spoil == "expired" else None
    token, text = identity.create_token("bob", "ci", expires)
    secret = text.removeprefix(f"cairn_{token.id}_")
    if spoil == "malformed":
        text = "Bearer nonsense"
    elif spoil == "unknown":
        text = f"cairn_{'0' * 16}_{secret}"
    elif spoil == "wrong-secret":
        text = text[:-1] + ("A" if text[-1] != "A" else "B")
    elif spoil == "revoked":
        identity.revoke_token(token.id)
    elif spoil == "expired":
        time.sleep(0.3)
    elif spoil == "disabled":
        identity.set_disabled("bob", True)
    expected = {
        "malformed": "malformed",
        "unknown": "not valid",
        "wrong-secret": "not valid",
        "revoked": "revoked",
        "expired": "expired",
        "disabled": "disabled",
    }[spoil]
    with pytest.raises(Unauthenticated, match=expected):
        identity.authenticate(text)
    failed = AuditLog(identity.engine).events(EventQuery(action="auth.failed"))
    assert len(failed) == 1
    assert expected in failed[0].content.payload
    assert secret not in failed[0].content.payload


def test_names_roles_and_references_are_checked(identity: IdentityStore) -> None:
    identity.add_user("carol")
    with pytest.raises(AlreadyExists, match="user 'carol' already exists"):
        identity.add_user("carol")
    with pytest.raises(InvalidInput, match="user name 'Carol Smith': expected 1 to 63"):
        identity.add_user("Carol Smith")
    with pytest.raises(NotFound, match="project 'fraud' not found"):
        identity.set_role("fraud", "carol", Role.VIEWER)
    with pytest.raises(NotFound, match="user 'dave' not found"):
        identity.create_token("dave", "x")
    with pytest.raises(InvalidInput, match="expires: expected a time in the future"):
        identity.create_token("carol", "x", expires_at=1)
    identity.add_project("fraud")
    identity.set_role("fraud", "carol", Role.APPROVER)
    identity.set_role("fraud", "carol", Role.VIEWER)  # one role per project: replaced
    assert [(m.user, m.role) for m in identity.members("fraud")] == [("carol", Role.VIEWER)]
    identity.set_role("fraud", "carol", None)
    assert identity.members("fraud") == []
    assert identity.list_projects() == ["default", "fraud"]

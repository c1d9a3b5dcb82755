"""Accounts, tokens and projects as one principal may use them."""

from __future__ import annotations

from cairn.core import missing
from cairn.core.access import (
    Permission,
    Principal,
    Role,
    require_admin,
    require_self_or_admin,
    require_visible,
)
from cairn.core.actor import on_behalf_of
from cairn.core.identity import AccountKind, Membership, Token, User
from cairn.core.ports import Accounts


class AuthorizedAccounts:
    """Accounts, tokens and projects as one principal may see and change them.

    Changes are decided by the store in their own transaction, on the principal's behalf.
    Reads: accounts are the installation admins' to list; a token list is the caller's
    own unless an admin asks; projects listed are those the caller holds a role in (all,
    for an admin); a project's members are visible to whoever may read the project.
    """

    def __init__(self, accounts: Accounts, principal: Principal) -> None:
        self._accounts, self.principal = accounts, principal

    def add_user(
        self, name: str, kind: AccountKind = AccountKind.USER, admin: bool = False
    ) -> User:
        with on_behalf_of(self.principal):
            return self._accounts.add_user(name, kind, admin)

    def list_users(self) -> list[User]:
        require_admin(self.principal, "list the accounts")
        return self._accounts.list_users()

    def set_disabled(self, name: str, disabled: bool) -> User:
        with on_behalf_of(self.principal):
            return self._accounts.set_disabled(name, disabled)

    def create_token(
        self, user: str, name: str, expires_at: int | None = None
    ) -> tuple[Token, str]:
        with on_behalf_of(self.principal):
            return self._accounts.create_token(user, name, expires_at)

    def list_tokens(self, user: str | None = None) -> list[Token]:
        if user is None and not self.principal.is_admin:
            user = self.principal.name  # everyone may list their own
        if user is not None:
            require_self_or_admin(self.principal, user, f"list the tokens of {user!r}")
        return self._accounts.list_tokens(user)

    def revoke_token(self, token_id: str) -> Token:
        with on_behalf_of(self.principal):
            return self._accounts.revoke_token(token_id)

    def add_project(self, name: str) -> str:
        with on_behalf_of(self.principal):
            return self._accounts.add_project(name)

    def list_projects(self) -> list[str]:
        found = self._accounts.list_projects()
        return [p for p in found if self.principal.may(Permission.READ, p)]

    def set_role(self, project: str, user: str, role: Role | None) -> Membership | None:
        with on_behalf_of(self.principal):
            return self._accounts.set_role(project, user, role)

    def members(self, project: str) -> list[Membership]:
        require_visible(self.principal, project, missing.project(project))
        return self._accounts.members(project)

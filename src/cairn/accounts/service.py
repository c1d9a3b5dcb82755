"""Accounts, tokens, projects and members as a service (the
:class:`~cairn.core.account_api.CallerAccounts`), decided for one caller by its
:class:`~cairn.core.authorizer.Authorizer`.

Accounts and projects are the installation admins' to make, list, enable and disable;
tokens are their owner's or an admin's to make, list and revoke — another's token is not
there for the caller, word for word as a token that does not exist; a project's members
are its admins' to change and its readers' to list, and a project the caller may not read
is not there for it. Each call is decided here first, and a write is then made as the
caller's (``Authorizer.writing``), so the store decides again inside the write's
transaction on the caller's standing as it is then.

A server builds one per caller (``Session.accounts_for_callers``); an embedded session
builds one for the local admin (``Session.accounts``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from cairn.core import missing
from cairn.core.access import Permission, Role
from cairn.core.identity import AccountKind
from cairn.core.limits import check_name

if TYPE_CHECKING:
    from cairn.core.authorizer import Authorizer
    from cairn.core.identity import Membership, Token, User
    from cairn.core.ports import Accounts


class AccountsService:
    """The accounts ``store`` as the caller ``authorizer`` decides for may use it."""

    def __init__(self, store: Accounts, authorizer: Authorizer) -> None:
        self._store, self.authorizer = store, authorizer

    def __repr__(self) -> str:
        return f"AccountsService({self._store!r}, {self.authorizer!r})"

    # accounts

    def list_users(self) -> list[User]:
        self.authorizer.admin("list the accounts")
        return self._store.list_users()

    def add_user(
        self, name: str, kind: AccountKind = AccountKind.USER, admin: bool = False
    ) -> User:
        self.authorizer.admin(f"add the account {name!r}")
        with self.authorizer.writing():
            return self._store.add_user(name, kind, admin)

    def set_disabled(self, name: str, disabled: bool) -> User:
        """A disabled account's tokens stop working at once.

        Raises:
            PermissionDenied: the caller is not an installation admin.
            NotFound: no such account.
        """
        self.authorizer.admin(f"{'disable' if disabled else 'enable'} the account {name!r}")
        with self.authorizer.writing():
            return self._store.set_disabled(name, disabled)

    def disable_user(self, name: str) -> User:
        return self.set_disabled(name, True)

    def enable_user(self, name: str) -> User:
        return self.set_disabled(name, False)

    # tokens

    def list_tokens(self, user: str | None = None) -> list[Token]:
        """The caller's own tokens; an admin's question: everyone's, or ``user``'s.

        Raises:
            PermissionDenied: ``user`` is another account, and the caller no admin.
        """
        if user is None and not self.authorizer.principal.is_admin:
            user = self.authorizer.name
        if user is not None:
            self.authorizer.self_or_admin(user, f"list the tokens of {user!r}")
        return self._store.list_tokens(user)

    def create_token(
        self, user: str | None = None, name: str = "token", expires_at: int | None = None
    ) -> tuple[Token, str]:
        """A token for ``user`` (None: the caller's own account) and its whole text.

        Raises:
            InvalidInput: an empty name, or ``expires_at`` not in the future.
            PermissionDenied: ``user`` is another account, and the caller no admin.
            NotFound: no such account.
        """
        user = self.authorizer.name if user is None else user
        self.authorizer.self_or_admin(user, f"create a token for {user!r}")
        check_name(name, "token name")
        with self.authorizer.writing():
            return self._store.create_token(user, name, expires_at)

    def revoke_token(self, token_id: str) -> Token:
        """Revoked once, when first asked; asked again, the token as it was revoked.

        Raises:
            NotFound: no such token, or (to all but admins) another account's.
        """
        if not self.authorizer.principal.is_admin:
            own = {token.id for token in self._store.list_tokens(self.authorizer.name)}
            if token_id not in own:
                raise missing.token(token_id)
        with self.authorizer.writing():
            return self._store.revoke_token(token_id)

    # projects and their members

    def list_projects(self) -> list[str]:
        """The projects the caller may read (every one, for an admin)."""
        return [p for p in self._store.list_projects() if self.authorizer.readable(p)]

    def add_project(self, name: str) -> str:
        self.authorizer.admin(f"add the project {name!r}")
        with self.authorizer.writing():
            return self._store.add_project(name)

    def members(self, project: str) -> list[Membership]:
        """Raises:
        NotFound: the caller may not read ``project``.
        """
        self.authorizer.see(project, missing.project(project))
        return self._store.members(project)

    def set_role(self, project: str, user: str, role: Role | None) -> Membership | None:
        """Give ``user`` ``role`` in ``project``; None takes the role held away.

        Raises:
            NotFound: no such project or account, or a project the caller may not read.
            PermissionDenied: the caller may read the project but not administer it.
        """
        what = f"change the members of {project!r}"
        self.authorizer.require(Permission.ADMINISTER, project, what, missing.project(project))
        with self.authorizer.writing():
            return self._store.set_role(project, user, role)

    def grant_role(self, project: str, user: str, role: Role) -> Membership:
        return cast("Membership", self.set_role(project, user, role))  # a role given is held

    def remove_member(self, project: str, user: str) -> None:
        self.set_role(project, user, None)

"""The one place a service call's permission is decided, for one caller.

A service receives an ``Authorizer`` when it is built for a caller — a server's request, or
the embedded local account, which is an installation admin explicitly
(``Authorizer.local_admin``), never by default — and asks it about the objects the call
reaches: may the caller see this project's things (if not, the call is answered as one
naming nothing: ``hidden``), does it hold this permission there (if not, PermissionDenied
naming it). Writes run ``writing()``: the store decides them again inside the write's own
transaction on the caller's standing as it is then (``cairn.stores.metadata.grants``), so a
role taken away or an account disabled between the check and the write counts.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager
from typing import Protocol, TypeVar

from cairn.core.access import (
    Permission,
    Principal,
    Role,
    require_admin,
    require_on,
    require_self_or_admin,
    require_to_add,
    require_visible,
)
from cairn.core.actor import Acting, local_user, on_behalf_of
from cairn.errors import CairnError


class _HasProject(Protocol):
    @property
    def project(self) -> str: ...


InProject = TypeVar("InProject", bound=_HasProject)


class Authorizer:
    def __init__(self, principal: Principal) -> None:
        self.principal = principal

    @classmethod
    def local_admin(cls) -> Authorizer:
        """The embedded local account: the operating-system user the process runs as, an
        installation admin (the only user of its own database)."""
        return cls(Principal(local_user(), is_admin=True))

    def __repr__(self) -> str:
        return f"Authorizer({self.principal.name!r})"

    @property
    def name(self) -> str:
        return self.principal.name

    def may(self, permission: Permission, project: str) -> bool:
        return self.principal.may(permission, project)

    def readable(self, project: str) -> bool:
        return self.principal.may(Permission.READ, project)

    def readable_projects(self) -> frozenset[str] | None:
        """None: every project (an admin)."""
        return self.principal.readable_projects()

    def only_readable(self, items: Iterable[InProject]) -> list[InProject]:
        """The items of the projects the caller may read."""
        return [item for item in items if self.readable(item.project)]

    def see(self, project: str, hidden: CairnError) -> None:
        """Raises:
        CairnError: ``hidden`` (what naming nothing gets), unless the caller may read in
            ``project``.
        """
        require_visible(self.principal, project, hidden)

    def require(self, permission: Permission, project: str, what: str, hidden: CairnError) -> None:
        """Raises:
        CairnError: ``hidden``, when the caller may not read in ``project``.
        PermissionDenied: it may read there but lacks ``permission``; naming it.
        """
        require_on(self.principal, permission, project, what, hidden)

    def require_to_add(self, kind: str, name: str, owner: str | None, project: str) -> None:
        """Adding a version to the ``kind`` (dataset, model) named ``name``: to the one of
        project ``owner``, or — none having that name (``owner`` None) — to a new one in
        ``project``.

        Raises:
            NotFound: a new one, in a project the caller may not read.
            AlreadyExists: the name is held in a project the caller may not read.
            PermissionDenied: it may read there, but not write; naming the permission.
        """
        require_to_add(self.principal, kind, name, owner, project)

    def admin(self, what: str) -> None:
        """Raises:
        PermissionDenied: the caller is not an installation admin.
        """
        require_admin(self.principal, what)

    def self_or_admin(self, user: str, what: str) -> None:
        """Raises:
        PermissionDenied: the caller is neither ``user`` nor an installation admin.
        """
        require_self_or_admin(self.principal, user, what)

    def role_in(self, project: str) -> Role | None:
        """The caller's role in ``project`` (an installation admin: admin)."""
        return Role.ADMIN if self.principal.is_admin else self.principal.roles.get(project)

    def writing(self) -> AbstractContextManager[Acting]:
        """Writes within the block are the caller's: the store re-checks its standing in
        the write's transaction and records it on the audit event."""
        return on_behalf_of(self.principal)

"""The permission check of a write, made inside the write's own transaction.

A check made before the transaction leaves a gap: a role taken away, or an account
disabled, between the check and the write would not stop it. Every write in the metadata
store calls one of these on the connection of its transaction, after reading what it
changes (and so which project it belongs to), before changing anything; the decision
itself is ``cairn.core.access.require``. The principal is the one acting in the current
context (``cairn.core.actor``); an account's standing is read again here, in the same
transaction as the write and the write's audit event.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, select

from cairn.core.access import (
    Permission,
    Principal,
    Role,
    require,
    require_admin,
    require_self_or_admin,
)
from cairn.core.actor import current
from cairn.errors import PermissionDenied, Unauthenticated
from cairn.stores.metadata import objects
from cairn.stores.metadata import schema as t


def authorize(conn: Connection, permission: Permission, project: str, what: str) -> None:
    """Raises:
    PermissionDenied: the acting principal lacks ``permission`` in ``project``.
    Unauthenticated: its account has been disabled or removed meanwhile.
    """
    principal = acting(conn)
    if principal is not None:
        require(principal, permission, project, what)


def authorize_admin(conn: Connection, what: str) -> None:
    """Raises:
    PermissionDenied: the acting principal is not an installation admin.
    """
    principal = acting(conn)
    if principal is not None:
        require_admin(principal, what)


def authorize_self_or_admin(conn: Connection, user: str, what: str) -> None:
    """Raises:
    PermissionDenied: the acting principal is neither ``user`` nor an installation admin.
    """
    principal = acting(conn)
    if principal is not None:
        require_self_or_admin(principal, user, what)


def authorize_objects(conn: Connection, digests: Iterable[str], what: str) -> None:
    """Recording an object in a project hands it to whoever may read there: the acting
    principal must hold each one already (see ``cairn.stores.metadata.objects``).

    Raises:
        PermissionDenied: some digest is neither readable by the principal where a project
            holds it nor uploaded by it; naming how many, and one of them.
        Unauthenticated: its account has been disabled or removed meanwhile.
    """
    principal = acting(conn)
    if principal is None or principal.is_admin:
        return
    wanted = set(digests)
    foreign = wanted - objects.held(conn, principal, wanted)
    if foreign:
        raise PermissionDenied(
            f"{principal.name} may not {what}: {len(foreign)} of its objects (such as "
            f"{min(foreign)}) are neither in a project where it has the 'read' permission "
            "nor uploaded by it; upload their bytes (PUT /objects/{digest}) first"
        )


def roles_of(conn: Connection, user: str) -> dict[str, Role]:
    m = t.project_members.c
    rows = conn.execute(select(m.project, m.role).where(m.user_name == user)).all()
    return {project: Role(role) for project, role in rows}


def acting(conn: Connection) -> Principal | None:
    """The principal to decide for, as its account stands now; None for a trusted caller."""
    principal = current().principal
    if principal is None or not principal.account:
        return principal
    u = t.users.c
    row = conn.execute(select(u.is_admin, u.disabled).where(u.name == principal.name)).first()
    if row is None or row.disabled:
        raise Unauthenticated(f"the account {principal.name!r} is disabled")
    if row.is_admin:  # an admin's roles decide nothing
        return Principal(principal.name, True, {}, True)
    return Principal(principal.name, False, roles_of(conn, principal.name), True)

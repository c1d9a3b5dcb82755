"""The permission check of a write, made inside the write's own transaction.

A check made before the transaction leaves a gap: a role taken away, or an account
disabled, between the check and the write would not stop it. Every write in the metadata
store calls one of these on the connection of its transaction, after reading what it
changes (and so which project it belongs to), before changing anything; the decision
itself is ``cairn.core.access.require_on``. The principal is the one acting in the current
context (``cairn.core.actor``); an account's standing is read again here, in the same
transaction as the write and the write's audit event.

Each check is given ``hidden``: the error the write gets when what it names does not exist
(``cairn.core.missing``). A principal who may not read the project raises that instead of
PermissionDenied, so a write names no project and tells nothing of what it holds.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, select

from cairn.core.access import (
    Permission,
    Principal,
    Role,
    require_admin,
    require_on,
    require_self_or_admin,
    require_to_add,
)
from cairn.core.actor import current
from cairn.errors import CairnError, PermissionDenied, Unauthenticated
from cairn.stores.metadata import objects
from cairn.stores.metadata import schema as t


def authorize(
    conn: Connection, permission: Permission, project: str, what: str, hidden: CairnError
) -> None:
    """Raises:
    CairnError: ``hidden``, when the acting principal may not read in ``project``.
    PermissionDenied: it may read there, but lacks ``permission``.
    Unauthenticated: its account has been disabled or removed meanwhile.
    """
    principal = acting(conn)
    if principal is not None:
        require_on(principal, permission, project, what, hidden)


def authorize_to_add(
    conn: Connection, kind: str, name: str, owner: str | None, project: str
) -> None:
    """Adding a version to the ``kind`` ``name`` (of project ``owner``; None: a new one in
    ``project``), as ``cairn.core.access.require_to_add`` decides.

    Raises:
        NotFound: a new one, in a project the acting principal may not read.
        AlreadyExists: the name is held in a project it may not read.
        PermissionDenied: it may read there, but not write.
        Unauthenticated: its account has been disabled or removed meanwhile.
    """
    principal = acting(conn)
    if principal is not None:
        require_to_add(principal, kind, name, owner, project)


def authorize_admin(conn: Connection, what: str) -> None:
    """Raises:
    PermissionDenied: the acting principal is not an installation admin.
    """
    principal = acting(conn)
    if principal is not None:
        require_admin(principal, what)


def authorize_self_or_admin(
    conn: Connection, user: str, what: str, hidden: CairnError | None = None
) -> None:
    """``hidden``: what to raise instead of PermissionDenied, for what only ``user`` and
    the admins may know exists (their token, by its id).

    Raises:
        PermissionDenied: the acting principal is neither ``user`` nor an installation admin.
        CairnError: ``hidden`` then, when given.
    """
    principal = acting(conn)
    if principal is None:
        return
    try:
        require_self_or_admin(principal, user, what)
    except PermissionDenied:
        if hidden is None:
            raise
        raise hidden from None


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

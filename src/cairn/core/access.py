"""Who may do what: roles per project, the permissions they carry, and the one decision.

Projects group experiments, datasets and models. A user holds at most one role per
project; installation admins may do everything everywhere. Every entry point (the server's
routes, the CLI, the SDK) asks ``require`` the same question, so a decision is made in one
place.

What a principal may not read does not exist for it: a request reaching something of a
project the principal has no ``read`` permission in is answered as the same request naming
nothing would be (``require_visible``: 404, the message of ``cairn.core.missing``), so
the answer names no project and tells nothing of what is there. A principal who may read
there but lacks the permission the request needs is told which (``require``: 403).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from cairn.core import missing
from cairn.errors import CairnError, PermissionDenied


class Permission(StrEnum):
    READ = "read"  # see runs, data, models, the project's audit events
    WRITE = "write"  # record runs, version data, register model versions
    MANAGE = "manage"  # manage models and aliases, request promotions
    APPROVE = "approve"  # approve or reject promotion requests
    ADMINISTER = "administer"  # members and settings of the project


class Role(StrEnum):
    VIEWER = "viewer"
    CONTRIBUTOR = "contributor"
    MAINTAINER = "maintainer"
    APPROVER = "approver"
    ADMIN = "admin"


# Approvers do not write: who records a model should not be who approves its release.
ROLE_PERMISSIONS: Mapping[Role, frozenset[Permission]] = {
    Role.VIEWER: frozenset({Permission.READ}),
    Role.CONTRIBUTOR: frozenset({Permission.READ, Permission.WRITE}),
    Role.MAINTAINER: frozenset({Permission.READ, Permission.WRITE, Permission.MANAGE}),
    Role.APPROVER: frozenset({Permission.READ, Permission.APPROVE}),
    Role.ADMIN: frozenset(Permission),
}


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated user or service account, with its roles by project id.

    ``account``: the principal is an account of the identity store, as it stood when it
    authenticated. Its standing (admin flag, roles, disabled) is read again inside every
    write's transaction, so a role taken away or an account disabled meanwhile counts
    from that moment. Principals made in process (the embedded local user, ``anonymous``
    of a server without auth) are decided by the fields they carry.
    """

    name: str
    is_admin: bool = False
    roles: Mapping[str, Role] = field(default_factory=dict)
    account: bool = False

    def may(self, permission: Permission, project_id: str) -> bool:
        if self.is_admin:
            return True
        role = self.roles.get(project_id)
        return role is not None and permission in ROLE_PERMISSIONS[role]

    def readable_projects(self) -> frozenset[str] | None:
        """The projects this principal may read; None means every project (an admin)."""
        if self.is_admin:
            return None
        return frozenset(
            p for p, role in self.roles.items() if Permission.READ in ROLE_PERMISSIONS[role]
        )


def require(principal: Principal, permission: Permission, project_id: str, what: str) -> None:
    """Raises:
    PermissionDenied: naming the permission that is missing and where.
    """
    if not principal.may(permission, project_id):
        raise PermissionDenied(
            f"{principal.name} may not {what}: it needs the {permission.value!r} permission "
            f"in project {project_id!r} (a role that grants it: "
            f"{', '.join(_roles_granting(permission))})"
        )


def require_visible(principal: Principal, project: str, hidden: CairnError) -> None:
    """``hidden`` is what the request gets when it names nothing that exists (see
    ``cairn.core.missing``), raised when ``principal`` may not read in ``project``.

    Raises:
        CairnError: ``hidden`` — NotFound, or AlreadyExists for a name that is unique
            across projects.
    """
    if not principal.may(Permission.READ, project):
        raise hidden


def require_on(
    principal: Principal, permission: Permission, project: str, what: str, hidden: CairnError
) -> None:
    """``permission`` on something of ``project``, which the principal must see first.

    Raises:
        CairnError: ``hidden``, when the principal may not read in ``project``.
        PermissionDenied: it may read there, but lacks ``permission``; naming it.
    """
    require_visible(principal, project, hidden)
    require(principal, permission, project, what)


def require_to_add(
    principal: Principal, kind: str, name: str, owner: str | None, project: str
) -> None:
    """Adding a version to the ``kind`` (dataset, model) named ``name``: to the one of
    project ``owner``, or — none having that name (``owner`` None) — to a new one in
    ``project``.

    Raises:
        NotFound: a new one, in a project the principal may not read (or none).
        AlreadyExists: the name is held in a project the principal may not read.
        PermissionDenied: the principal may read there, but not write.
    """
    what = f"add a version of the {kind} {name!r}"
    if owner is None:
        require_on(principal, Permission.WRITE, project, what, missing.project(project))
    else:
        require_on(principal, Permission.WRITE, owner, what, missing.taken(kind, name))


def require_admin(principal: Principal, what: str) -> None:
    """Raises:
    PermissionDenied: ``principal`` is not an installation admin.
    """
    if not principal.is_admin:
        raise PermissionDenied(f"{principal.name} may not {what}: only installation admins may")


def require_self_or_admin(principal: Principal, user: str, what: str) -> None:
    """Raises:
    PermissionDenied: ``principal`` is neither the account ``user`` nor an installation admin.
    """
    if not (principal.is_admin or principal.name == user):
        raise PermissionDenied(
            f"{principal.name} may not {what}: only {user!r} and installation admins may"
        )


def _roles_granting(permission: Permission) -> list[str]:
    return [role.value for role, granted in ROLE_PERMISSIONS.items() if permission in granted]

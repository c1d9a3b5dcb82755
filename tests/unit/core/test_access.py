"""Roles grant permissions per project; everything else is denied, with the reason."""

from __future__ import annotations

import pytest

from cairn.core.access import ROLE_PERMISSIONS, Permission, Principal, Role, require
from cairn.errors import PermissionDenied


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("permission", list(Permission))
def test_a_role_grants_its_permissions_in_its_project_only(
    role: Role, permission: Permission
) -> None:
    alice = Principal("alice", roles={"churn": role})
    assert alice.may(permission, "churn") == (permission in ROLE_PERMISSIONS[role])
    assert not alice.may(permission, "fraud")


def test_approvers_do_not_write_and_admins_do_everything() -> None:
    assert not Principal("a", roles={"p": Role.APPROVER}).may(Permission.WRITE, "p")
    root = Principal("root", is_admin=True)
    assert all(root.may(p, "any") for p in Permission)
    assert root.readable_projects() is None


def test_a_denial_says_what_is_missing_and_which_roles_grant_it() -> None:
    bob = Principal("bob", roles={"churn": Role.VIEWER})
    with pytest.raises(PermissionDenied) as denied:
        require(bob, Permission.WRITE, "churn", "log to run 3f2a")
    assert str(denied.value) == (
        "bob may not log to run 3f2a: it needs the 'write' permission in project 'churn' "
        "(a role that grants it: contributor, maintainer, admin)"
    )
    assert denied.value.http_status == 403


def test_readable_projects_leave_out_projects_without_a_role() -> None:
    carol = Principal("carol", roles={"churn": Role.APPROVER, "fraud": Role.VIEWER})
    assert carol.readable_projects() == {"churn", "fraud"}

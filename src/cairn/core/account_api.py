"""Accounts, API tokens, projects and members as one caller may use them, and their
operations over HTTP (one table, from which the server's routes and the HTTP client are
both made).

:class:`CallerAccounts` is the :class:`~cairn.core.ports.Accounts` port decided for one
caller, plus what the port says with one method and the wire with two operations:
enabling and disabling an account are two paths (``set_disabled`` over them), and taking
a role away is a DELETE of the membership (``set_role`` with no role is
``remove_member``). A token is made for the caller's own account unless it names
another.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from pydantic import StrictBool

from cairn.core.access import Role
from cairn.core.identity import AccountKind
from cairn.core.identity_codec import (
    membership_from_dict,
    membership_to_dict,
    new_token_from_dict,
    new_token_to_dict,
    token_from_dict,
    token_to_dict,
    user_from_dict,
    user_to_dict,
)
from cairn.core.limits import MAX_NAME
from cairn.core.operations import (
    NOTHING,
    Access,
    Arg,
    Kind,
    Operation,
    Place,
    Result,
    listed,
    one,
    table,
)
from cairn.core.ports import Accounts

if TYPE_CHECKING:
    from cairn.core.identity import Membership, Token, User


class CallerAccounts(Accounts, Protocol):
    """Accounts, tokens, projects and members as one caller may see and change them:
    accounts and projects are the installation admins' to make and list, tokens their
    owner's or an admin's, a project's members the project's admins' to change and its
    readers' to list. A project the caller may not read is not there for it."""

    def create_token(
        self, user: str | None = None, name: str = "token", expires_at: int | None = None
    ) -> tuple[Token, str]:
        """A token for ``user`` (None: the caller's own account) and its whole text, shown
        this once. Raises NotFound, InvalidInput, PermissionDenied."""

    def disable_user(self, name: str) -> User:
        """Its tokens stop working at once; raises NotFound, PermissionDenied."""

    def enable_user(self, name: str) -> User: ...

    def grant_role(self, project: str, user: str, role: Role) -> Membership:
        """Give ``user`` ``role`` in ``project``, replacing the one held; raises NotFound,
        PermissionDenied."""

    def remove_member(self, project: str, user: str) -> None:
        """Take ``user``'s role in ``project`` away (holding none: nothing changes)."""


_DECIDED = Access.AUTHENTICATED  # the service decides for the caller (see CallerAccounts)
_USER = Arg("name", Place.PATH)
_USER_ = one(user_to_dict, user_from_dict)
_MEMBER = (Arg("project", Place.PATH), Arg("user", Place.PATH))

OPERATIONS = table(
    Operation("list_users", "GET", "/users", _DECIDED,
              listed("users", user_to_dict, user_from_dict),
              summary="Every account (installation admins only)."),
    Operation("add_user", "POST", "/users", _DECIDED,
              one(user_to_dict, user_from_dict, status=201),
              (Arg("name", max_length=MAX_NAME),
               Arg("kind", kind=AccountKind, required=False, default=AccountKind.USER),
               Arg("admin", required=False, default=False, shape=StrictBool))),
    Operation("disable_user", "POST", "/users/{name}/disable", _DECIDED, _USER_, (_USER,),
              "Its tokens stop working at once."),
    Operation("enable_user", "POST", "/users/{name}/enable", _DECIDED, _USER_, (_USER,)),
    Operation("list_tokens", "GET", "/tokens", _DECIDED,
              listed("tokens", token_to_dict, token_from_dict),
              (Arg("user", Place.QUERY, required=False, max_length=MAX_NAME),),
              "The caller's own tokens, or (installation admins) everyone's or one account's; "
              "never their secrets."),
    Operation("create_token", "POST", "/tokens", _DECIDED,
              one(new_token_to_dict, new_token_from_dict, status=201),
              (Arg("user", required=False, max_length=MAX_NAME),
               Arg("name", required=False, default="token", max_length=MAX_NAME),
               Arg("expires_at", kind=Kind.TIMESTAMP, required=False)),
              "A token for `user` (default: the caller's own account); its whole text is in "
              "`token`, in this answer only."),
    Operation("revoke_token", "POST", "/tokens/{token_id}/revoke", _DECIDED,
              one(token_to_dict, token_from_dict), (Arg("token_id", Place.PATH),)),
    Operation("list_projects", "GET", "/projects", _DECIDED,
              Result(lambda names: {"projects": list(names)},
                     lambda data: [str(name) for name in data["projects"]]),
              summary="The projects the caller may read."),
    Operation("add_project", "POST", "/projects", _DECIDED,
              one(lambda name: {"name": name}, lambda data: str(data["name"]), status=201),
              (Arg("name", max_length=MAX_NAME),)),
    Operation("members", "GET", "/projects/{project}/members", _DECIDED,
              listed("members", membership_to_dict, membership_from_dict), _MEMBER[:1]),
    Operation("grant_role", "PUT", "/projects/{project}/members/{user}", _DECIDED,
              one(membership_to_dict, membership_from_dict), (*_MEMBER, Arg("role", kind=Role)),
              "Give an account a role in the project, replacing the one it held."),
    Operation("remove_member", "DELETE", "/projects/{project}/members/{user}", _DECIDED,
              NOTHING, _MEMBER, "Take an account's role in the project away."),
)  # fmt: skip

"""Accounts, API tokens, projects and members: what ``cairn users|tokens|projects`` do
when ``CAIRN_URI`` points at this server. Who may do what is decided by the authorized
accounts store and, for changes, inside their transaction (see ``docs/security.md``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from cairn.core.access import Role
from cairn.core.identity import AccountKind
from cairn.core.identity_codec import membership_to_dict, token_to_dict, user_to_dict
from cairn.core.limits import MAX_NAME
from cairn.core.wire import Text, Timestamp
from cairn.errors import InvalidInput
from cairn.server.auth import ADMIN, ADMINISTER, AUTHENTICATED, READ, Caller
from cairn.server.responses import JsonResponse
from cairn.server.routes._stores import AccountsStore

router = APIRouter(tags=["accounts"])


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NewUserBody(_Body):
    name: Text
    kind: AccountKind = AccountKind.USER
    admin: bool = False


class NewTokenBody(_Body):
    user: Text | None = None  # default: the caller's own account
    name: Annotated[Text, Field(min_length=1, max_length=MAX_NAME)] = "token"
    expires_at: Timestamp | None = None


class NewProjectBody(_Body):
    name: Text


class RoleBody(_Body):
    role: Role


@router.get("/users", dependencies=[ADMIN])
def list_users(accounts: AccountsStore) -> JsonResponse:
    return JsonResponse({"users": [user_to_dict(u) for u in accounts.list_users()]})


@router.post("/users", status_code=201, dependencies=[ADMIN])
def add_user(body: NewUserBody, accounts: AccountsStore) -> JsonResponse:
    user = accounts.add_user(body.name, body.kind, body.admin)
    return JsonResponse(user_to_dict(user), status_code=201)


@router.post("/users/{name}/disable", dependencies=[ADMIN])
def disable_user(name: str, accounts: AccountsStore) -> JsonResponse:
    return JsonResponse(user_to_dict(accounts.set_disabled(name, True)))


@router.post("/users/{name}/enable", dependencies=[ADMIN])
def enable_user(name: str, accounts: AccountsStore) -> JsonResponse:
    return JsonResponse(user_to_dict(accounts.set_disabled(name, False)))


@router.get("/tokens", dependencies=[AUTHENTICATED])
def list_tokens(accounts: AccountsStore, user: str | None = None) -> JsonResponse:
    return JsonResponse({"tokens": [token_to_dict(t) for t in accounts.list_tokens(user)]})


@router.post("/tokens", status_code=201, dependencies=[AUTHENTICATED])
def create_token(body: NewTokenBody, accounts: AccountsStore, caller: Caller) -> JsonResponse:
    """The token's whole text is in ``token``, in this answer only."""
    token, text = accounts.create_token(body.user or caller.name, body.name, body.expires_at)
    return JsonResponse({**token_to_dict(token), "token": text}, status_code=201)


@router.post("/tokens/{token_id}/revoke", dependencies=[AUTHENTICATED])
def revoke_token(token_id: str, accounts: AccountsStore) -> JsonResponse:
    return JsonResponse(token_to_dict(accounts.revoke_token(token_id)))


@router.get("/projects", dependencies=[AUTHENTICATED])
def list_projects(accounts: AccountsStore) -> JsonResponse:
    return JsonResponse({"projects": accounts.list_projects()})


@router.post("/projects", status_code=201, dependencies=[ADMIN])
def add_project(body: NewProjectBody, accounts: AccountsStore) -> JsonResponse:
    return JsonResponse({"name": accounts.add_project(body.name)}, status_code=201)


@router.get("/projects/{project}/members", dependencies=[READ])
def list_members(project: str, accounts: AccountsStore) -> JsonResponse:
    members = [membership_to_dict(m) for m in accounts.members(project)]
    return JsonResponse({"members": members})


@router.put("/projects/{project}/members/{user}", dependencies=[ADMINISTER])
def set_role(project: str, user: str, body: RoleBody, accounts: AccountsStore) -> JsonResponse:
    membership = accounts.set_role(project, user, body.role)
    if membership is None:  # only a role of None takes one away
        raise InvalidInput("role: expected viewer, contributor, maintainer, approver or admin")
    return JsonResponse(membership_to_dict(membership))


@router.delete("/projects/{project}/members/{user}", status_code=204, dependencies=[ADMINISTER])
def remove_member(project: str, user: str, accounts: AccountsStore) -> Response:
    accounts.set_role(project, user, None)
    return Response(status_code=204)

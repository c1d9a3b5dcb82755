"""The :class:`~cairn.core.ports.Accounts` port over a Cairn server's REST API: what
``cairn users|tokens|projects`` use when ``CAIRN_URI`` is set. The server decides each
call for the caller's token, as it would any other request."""

from __future__ import annotations

from cairn.client.transport import ServerStore, api_path
from cairn.core.access import Role
from cairn.core.identity import AccountKind, Membership, Token, User
from cairn.core.identity_codec import (
    membership_from_dict,
    token_from_dict,
    user_from_dict,
)


class HttpAccounts(ServerStore):
    def add_user(
        self, name: str, kind: AccountKind = AccountKind.USER, admin: bool = False
    ) -> User:
        body = {"name": name, "kind": AccountKind(kind).value, "admin": admin}
        return user_from_dict(self._http.call("POST", api_path("users"), json=body))

    def list_users(self) -> list[User]:
        data = self._http.call("GET", api_path("users"))
        return [user_from_dict(u) for u in data["users"]]

    def set_disabled(self, name: str, disabled: bool) -> User:
        action = "disable" if disabled else "enable"
        return user_from_dict(self._http.call("POST", api_path("users", name, action)))

    def create_token(
        self, user: str, name: str, expires_at: int | None = None
    ) -> tuple[Token, str]:
        body = {"user": user, "name": name, "expires_at": expires_at}
        data = self._http.call("POST", api_path("tokens"), json=body)
        return token_from_dict(data), str(data["token"])

    def list_tokens(self, user: str | None = None) -> list[Token]:
        params = {} if user is None else {"user": user}
        data = self._http.call("GET", api_path("tokens"), params=params)
        return [token_from_dict(t) for t in data["tokens"]]

    def revoke_token(self, token_id: str) -> Token:
        return token_from_dict(self._http.call("POST", api_path("tokens", token_id, "revoke")))

    def add_project(self, name: str) -> str:
        data = self._http.call("POST", api_path("projects"), json={"name": name})
        return str(data["name"])

    def list_projects(self) -> list[str]:
        data = self._http.call("GET", api_path("projects"))
        return [str(p) for p in data["projects"]]

    def set_role(self, project: str, user: str, role: Role | None) -> Membership | None:
        path = api_path("projects", project, "members", user)
        if role is None:
            self._http.call("DELETE", path)
            return None
        body = {"role": Role(role).value}
        return membership_from_dict(self._http.call("PUT", path, json=body))

    def members(self, project: str) -> list[Membership]:
        data = self._http.call("GET", api_path("projects", project, "members"))
        return [membership_from_dict(m) for m in data["members"]]

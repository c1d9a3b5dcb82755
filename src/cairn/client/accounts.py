"""The :class:`~cairn.core.account_api.CallerAccounts` over a Cairn server's REST API (made
from its table of operations): what ``cairn users|tokens|projects`` use when ``CAIRN_URI``
is set. The server decides each call for the caller's token, as it would any other
request."""

from __future__ import annotations

from cairn.client.operations import OperationClient
from cairn.core.access import Role
from cairn.core.account_api import OPERATIONS
from cairn.core.identity import Membership, User


class HttpAccounts(OperationClient):
    operations = OPERATIONS

    def set_disabled(self, name: str, disabled: bool) -> User:
        """Two operations on the wire: ``disable_user`` and ``enable_user``."""
        found: User = self.disable_user(name) if disabled else self.enable_user(name)
        return found

    def set_role(self, project: str, user: str, role: Role | None) -> Membership | None:
        """No role takes the one held away: ``remove_member`` on the wire."""
        if role is None:
            self.remove_member(project, user)
            return None
        found: Membership = self.grant_role(project, user, role)
        return found

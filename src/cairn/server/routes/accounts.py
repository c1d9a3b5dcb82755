"""Accounts, API tokens, projects and members — the routes of their table of operations
(``cairn.core.account_api``): what ``cairn users|tokens|projects`` do when ``CAIRN_URI``
points at this server.

Any valid token reaches a route; the accounts service built for the caller decides
(installation admins: accounts and projects; everyone: their own tokens; a project's
admins: its members; its readers: the list of them), and a change again on the caller's
standing inside its transaction (see ``docs/security.md``). A project the caller may not
read is not there for it (404).
"""

from __future__ import annotations

from fastapi import APIRouter

from cairn.core.account_api import OPERATIONS
from cairn.server.operations import mount, per_caller

router = APIRouter(tags=["accounts"])

mount(router, OPERATIONS, per_caller("accounts", "this server keeps no accounts"))

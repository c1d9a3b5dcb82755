"""Release governance (the Releases port): environments, promotion requests, approvals,
rollbacks, deployment history and webhooks — the routes of its table of operations
(``cairn.core.release_api``).

The server gathers every gate's evidence itself, from its own registry, runs and data;
a client only names the version and the environment. Any valid token reaches a route; the
service decides the call for its caller, on the objects it reaches (request and rollback:
``manage`` in the model's project; approve and reject: ``approve``; environments, policies
and webhooks: installation admins), and a write again on the caller's standing inside its
transaction.
"""

from __future__ import annotations

from fastapi import APIRouter

from cairn.core.release_api import OPERATIONS
from cairn.server.operations import mount, per_caller

router = APIRouter(tags=["releases"])

mount(router, OPERATIONS, per_caller("releases", "this server keeps no releases"))

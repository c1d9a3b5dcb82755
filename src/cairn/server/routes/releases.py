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

from fastapi import APIRouter, Depends, Request

from cairn.core.ports import Releases
from cairn.core.release_api import OPERATIONS
from cairn.errors import NotFound
from cairn.server.auth import Caller
from cairn.server.operations import mount

router = APIRouter(tags=["releases"])


async def _releases(request: Request, caller: Caller) -> Releases:
    factory = request.app.state.releases
    if factory is None:
        raise NotFound("this server keeps no releases")
    found: Releases = factory(caller)
    return found


mount(router, OPERATIONS, Depends(_releases))

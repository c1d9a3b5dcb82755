"""Who the caller is: what ``cairn login`` checks a token with, and so a login (audited)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from cairn.server.auth import AUTHENTICATED, Caller
from cairn.server.responses import JsonResponse

router = APIRouter(tags=["identity"])


@router.get("/whoami", dependencies=[AUTHENTICATED])
async def whoami(request: Request, caller: Caller) -> JsonResponse:
    identity = request.app.state.identity
    if identity is not None:
        await run_in_threadpool(identity.record_login)
    roles = {project: role.value for project, role in sorted(caller.roles.items())}
    return JsonResponse({"name": caller.name, "admin": caller.is_admin, "roles": roles})

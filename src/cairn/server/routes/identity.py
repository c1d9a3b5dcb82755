"""Who the caller is: what ``cairn login`` checks a token with."""

from __future__ import annotations

from fastapi import APIRouter

from cairn.server.auth import AUTHENTICATED, Caller
from cairn.server.responses import JsonResponse

router = APIRouter(tags=["identity"])


@router.get("/whoami", dependencies=[AUTHENTICATED])
async def whoami(caller: Caller) -> JsonResponse:
    roles = {project: role.value for project, role in sorted(caller.roles.items())}
    return JsonResponse({"name": caller.name, "admin": caller.is_admin, "roles": roles})

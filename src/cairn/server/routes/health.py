"""``GET /health``: liveness, and the version a client may check against its own."""

from __future__ import annotations

from fastapi import APIRouter

from cairn._version import __version__
from cairn.server.auth import PUBLIC
from cairn.server.responses import JsonResponse

router = APIRouter(tags=["health"])


@router.get("/health", dependencies=[PUBLIC])
async def health() -> JsonResponse:
    return JsonResponse({"status": "ok", "version": __version__})

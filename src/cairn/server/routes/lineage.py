"""Lineage walks — the route of their table of operations (``cairn.core.lineage_api``),
reaching the walk service built for the caller (``cairn.models.walks``): the node a walk
starts from must be one the caller may read, and the walk goes on only through nodes it
may read."""

from __future__ import annotations

from fastapi import APIRouter

from cairn.core.lineage_api import OPERATIONS
from cairn.server.operations import mount, per_caller

router = APIRouter(tags=["lineage"])

mount(router, OPERATIONS, per_caller("walks", "this server keeps no lineage graph"))

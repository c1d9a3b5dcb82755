"""Experiments, runs and what they record — the routes of tracking's table of operations
(``cairn.core.tracking_api``). Any valid token reaches a route; the tracking service built
for the caller decides on the runs and experiments it names: one of a project the caller
may not read is not there for it (404), one it may read but not change is a 403 naming the
permission, decided again on the caller's standing inside the write's transaction.

Recording a batch (``cairn.server.routes.metrics``) and downloading an artifact's file
(``cairn.server.routes.artifacts``) have routes of their own over the same service.
"""

from __future__ import annotations

from fastapi import APIRouter

from cairn.core.tracking_api import OPERATIONS
from cairn.server.operations import mount
from cairn.server.routes._stores import TRACKING

router = APIRouter(tags=["tracking"])

mount(router, OPERATIONS, TRACKING)

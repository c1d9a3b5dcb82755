"""Monitors — the routes of their table of operations (``cairn.core.monitor_api``).

Each operation reaches the monitors store as the caller: a monitor of a model in a project
the caller may not read is not there for it (404), one it may read but not write is a 403;
a monitor's reference and each evaluation's report must be objects the caller holds. The
webhooks of a monitor whose state an evaluation changed are posted by the server.
"""

from __future__ import annotations

from fastapi import APIRouter

from cairn.core.monitor_api import OPERATIONS
from cairn.server.operations import mount, per_caller

router = APIRouter(tags=["monitors"])

mount(router, OPERATIONS, per_caller("monitors", "this server keeps no monitors"))

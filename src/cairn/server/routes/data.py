"""Datasets and data versions — the routes of the data catalog's table of operations
(``cairn.core.data_api``).

Each reaches the catalog service built for the caller, which decides on the datasets it
names: one of a project the caller may not read is not there for it (404, or 409 for a
name taken), one it may read but not change is a 403 naming the permission. The files
themselves travel as objects (``/objects``): a client stores a version's objects first,
then records the version, which the service checks in the objects the caller holds.
"""

from __future__ import annotations

from fastapi import APIRouter

from cairn.core.data_api import OPERATIONS
from cairn.server.operations import mount, per_caller

router = APIRouter(tags=["data"])

CATALOG = per_caller("catalog", "this server keeps no data catalog")
mount(router, OPERATIONS, CATALOG)

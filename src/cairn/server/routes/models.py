"""The model registry — the routes of its table of operations (``cairn.core.model_api``).

Each registry operation reaches the registry service built for the caller, which decides
on the models it names: one of a project the caller may not read is not there for it
(404, or 409 for a name taken), one it may read but not change is a 403 naming the
permission. A version is registered from a package already stored (``/objects``): the
server reads its manifest and files from its own store, verifies them, and scans the
pickles itself — what a client says about its package is never taken on trust.
"""

from __future__ import annotations

from fastapi import APIRouter

from cairn.core.model_api import OPERATIONS
from cairn.server.operations import mount, per_caller

router = APIRouter(tags=["models"])

mount(router, OPERATIONS, per_caller("registry", "this server keeps no model registry"))

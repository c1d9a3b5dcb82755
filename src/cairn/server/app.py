"""The FastAPI application: routers mounted over the two stores, errors in one shape."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Depends, FastAPI

from cairn._version import __version__
from cairn.config import ServerLimits
from cairn.core.access import Principal
from cairn.core.account_api import CallerAccounts
from cairn.core.data_api import Catalog
from cairn.core.lineage_api import Walks
from cairn.core.model_api import Registry
from cairn.core.ports import (
    ArtifactStore,
    Monitors,
    Releases,
)
from cairn.core.tracking_api import Tracking
from cairn.server.context import RequestContext
from cairn.server.errors import install_error_handlers
from cairn.server.fields import plain_parameters
from cairn.server.limits import install_limits, lifespan
from cairn.server.responses import JsonResponse
from cairn.server.routes import (
    accounts,
    data,
    health,
    identity,
    lineage,
    metrics,
    models,
    monitors,
    objects,
    releases,
    tracking,
)
from cairn.server.routes import artifacts as artifact_routes
from cairn.server.streams import BodyIdleTimeout

API_PREFIX = "/api/v1"
# Every router the app serves under API_PREFIX (health is served at the root).
API_ROUTERS = tuple(
    m.router
    for m in (
        tracking,
        metrics,
        artifact_routes,
        objects,
        data,
        models,
        lineage,
        releases,
        monitors,
        identity,
        accounts,
    )
)


def create_app(
    tracking_service: Callable[[Principal], Tracking],
    object_service: Callable[[Principal], ArtifactStore],
    identity_store: Any = None,
    auth: bool = True,
    catalog_service: Callable[[Principal], Catalog] | None = None,
    registry_service: Callable[[Principal], Registry] | None = None,
    walk_service: Callable[[Principal], Walks] | None = None,
    release_service: Callable[[Principal], Releases] | None = None,
    limits: ServerLimits | None = None,
    accounts_service: Callable[[Principal], CallerAccounts] | None = None,
    monitor_service: Callable[[Principal], Monitors] | None = None,
) -> FastAPI:
    """A Cairn server over these services, each made for a caller by the function given;
    the caller owns the stores beneath and closes them.

    ``tracking_service`` makes the tracking service of ``/experiments`` and ``/runs``,
    ``object_service`` the object service of ``/objects``.
    ``identity_store`` (an ``IdentityStore``) authenticates callers, with ``auth``;
    without it, or without ``auth``, every caller is an admin named ``anonymous``.
    ``accounts_service`` makes the accounts service of ``/users``, ``/tokens`` and
    ``/projects`` for each caller.
    ``walk_service`` makes the walks of ``/lineage/walk``; ``catalog_service`` makes the data
    catalog of ``/datasets``, ``registry_service`` the model registry of ``/models``, and
    ``release_service`` the release service of ``/environments``, ``/promotions`` and
    ``/webhooks``, and ``monitor_service`` the monitors of ``/monitors`` and ``/labels``,
    for each caller. ``limits`` bounds what one caller may hold of the server
    (``cairn.server.limits``; default: ``ServerLimits()``).
    The REST API lives under ``/api/v1``, the OpenAPI document at ``/openapi.json``.
    """
    limits = limits or ServerLimits()
    app = FastAPI(
        title="Cairn",
        version=__version__,
        default_response_class=JsonResponse,
        dependencies=[Depends(plain_parameters)],
        lifespan=lifespan,
    )
    install_limits(app, limits)
    app.state.metadata = tracking_service
    app.state.objects = object_service
    app.state.identity = identity_store if auth else None  # None: no authentication
    app.state.accounts = accounts_service
    app.state.catalog = catalog_service
    app.state.registry = registry_service
    app.state.walks = walk_service
    app.state.releases = release_service
    app.state.monitors = monitor_service
    install_error_handlers(app)
    app.add_middleware(BodyIdleTimeout, seconds=limits.body_idle_seconds)
    app.add_middleware(RequestContext)
    app.include_router(health.router)
    for router in API_ROUTERS:
        app.include_router(router, prefix=API_PREFIX)
    return app

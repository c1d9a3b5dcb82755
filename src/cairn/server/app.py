"""The FastAPI application: routers mounted over the two stores, errors in one shape."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Depends, FastAPI

from cairn._version import __version__
from cairn.config import ServerLimits
from cairn.core.access import Principal
from cairn.core.data_api import Catalog
from cairn.core.model_api import Registry
from cairn.core.ports import (
    ArtifactStore,
    LineageGraph,
    MetadataStore,
    Releases,
)
from cairn.server.context import RequestContext
from cairn.server.errors import install_error_handlers
from cairn.server.fields import plain_parameters
from cairn.server.limits import install_limits, lifespan
from cairn.server.responses import JsonResponse
from cairn.server.routes import (
    accounts,
    data,
    experiments,
    health,
    identity,
    inputs,
    metrics,
    models,
    objects,
    releases,
    runs,
)
from cairn.server.routes import artifacts as artifact_routes
from cairn.server.streams import BodyIdleTimeout

API_PREFIX = "/api/v1"
# Every router the app serves under API_PREFIX (health is served at the root).
API_ROUTERS = tuple(
    m.router
    for m in (
        experiments,
        runs,
        inputs,
        metrics,
        artifact_routes,
        objects,
        data,
        models,
        releases,
        identity,
        accounts,
    )
)


def create_app(
    metadata: MetadataStore,
    artifacts: ArtifactStore,
    identity_store: Any = None,
    auth: bool = True,
    catalog_service: Callable[[Principal], Catalog] | None = None,
    registry_service: Callable[[Principal], Registry] | None = None,
    lineage: LineageGraph | None = None,
    release_service: Callable[[Principal], Releases] | None = None,
    limits: ServerLimits | None = None,
) -> FastAPI:
    """A Cairn server over these stores; the caller owns them and closes them.

    ``metadata`` must also answer ``ProjectScopes`` (a database store does).
    ``identity_store`` (an ``IdentityStore``) keeps the accounts the ``/users``,
    ``/tokens`` and ``/projects`` routes manage and, with ``auth``, authenticates callers;
    without it, or without ``auth``, every caller is an admin named ``anonymous``.
    ``lineage`` is the graph ``/lineage/walk`` walks; ``catalog_service`` makes the data
    catalog of ``/datasets``, ``registry_service`` the model registry of ``/models``, and
    ``release_service`` the release service of ``/environments``, ``/promotions`` and
    ``/webhooks``, for each caller. ``limits`` bounds what one caller may hold of the server
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
    app.state.metadata = metadata
    app.state.scopes = metadata
    app.state.artifacts = artifacts
    app.state.identity = identity_store if auth else None  # None: no authentication
    app.state.accounts = identity_store
    app.state.catalog = catalog_service
    app.state.registry = registry_service
    app.state.lineage = lineage
    app.state.releases = release_service
    install_error_handlers(app)
    app.add_middleware(BodyIdleTimeout, seconds=limits.body_idle_seconds)
    app.add_middleware(RequestContext)
    app.include_router(health.router)
    for router in API_ROUTERS:
        app.include_router(router, prefix=API_PREFIX)
    return app

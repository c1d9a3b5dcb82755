"""The FastAPI application: routers mounted over the two stores, errors in one shape."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from cairn._version import __version__
from cairn.core.ports import ArtifactStore, MetadataStore
from cairn.server.context import RequestContext
from cairn.server.errors import install_error_handlers
from cairn.server.responses import JsonResponse
from cairn.server.routes import artifacts as artifact_routes
from cairn.server.routes import experiments, health, identity, metrics, objects, runs

API_PREFIX = "/api/v1"
# Every router the app serves under API_PREFIX (health is served at the root).
API_ROUTERS = tuple(
    m.router for m in (experiments, runs, metrics, artifact_routes, objects, identity)
)


def create_app(
    metadata: MetadataStore,
    artifacts: ArtifactStore,
    identity_store: Any = None,
) -> FastAPI:
    """A Cairn server over these stores; the caller owns them and closes them.

    ``metadata`` must also answer ``ProjectScopes`` (a database store does).
    ``identity_store`` (an ``IdentityStore``) authenticates callers; None serves without
    authentication.
    The REST API lives under ``/api/v1``, the OpenAPI document at ``/openapi.json``.
    """
    app = FastAPI(title="Cairn", version=__version__, default_response_class=JsonResponse)
    app.state.metadata = metadata
    app.state.scopes = metadata
    app.state.artifacts = artifacts
    app.state.identity = identity_store
    install_error_handlers(app)
    app.add_middleware(RequestContext)
    app.include_router(health.router)
    for router in API_ROUTERS:
        app.include_router(router, prefix=API_PREFIX)
    return app

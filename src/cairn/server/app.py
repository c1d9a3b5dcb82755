"""The FastAPI application: routers mounted over the two stores, errors in one shape."""

from __future__ import annotations

from fastapi import FastAPI

from cairn._version import __version__
from cairn.core.ports import ArtifactStore, MetadataStore
from cairn.server.context import RequestContext
from cairn.server.errors import install_error_handlers
from cairn.server.responses import JsonResponse
from cairn.server.routes import artifacts as artifact_routes
from cairn.server.routes import experiments, health, metrics, objects, runs

API_PREFIX = "/api/v1"


def create_app(metadata: MetadataStore, artifacts: ArtifactStore) -> FastAPI:
    """A Cairn server over these stores; the caller owns them and closes them.

    The REST API lives under ``/api/v1``, the OpenAPI document at ``/openapi.json``.
    """
    app = FastAPI(title="Cairn", version=__version__, default_response_class=JsonResponse)
    app.state.metadata = metadata
    app.state.artifacts = artifacts
    install_error_handlers(app)
    app.add_middleware(RequestContext)
    app.include_router(health.router)
    for module in (experiments, runs, metrics, artifact_routes, objects):
        app.include_router(module.router, prefix=API_PREFIX)
    return app

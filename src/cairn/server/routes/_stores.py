"""The stores a route works on, as FastAPI dependencies (set on ``app.state`` by create_app),
wrapped for the request's caller: a route reaches a store only through its access checks.

The dependencies are async on purpose: FastAPI runs sync dependencies in a worker thread,
a hop the ingest path should not pay just to read an attribute.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from cairn.core.ports import (
    ArtifactStore,
    DataCatalog,
    LineageGraph,
    MetadataStore,
)
from cairn.data.authorized import AuthorizedDataCatalog
from cairn.errors import NotFound
from cairn.server.auth import Caller
from cairn.tracking.authorized import (
    AuthorizedArtifactStore,
    AuthorizedMetadataStore,
)


async def _metadata(request: Request, caller: Caller) -> MetadataStore:
    state = request.app.state
    return AuthorizedMetadataStore(state.metadata, state.scopes, caller)


async def _artifacts(request: Request, caller: Caller) -> ArtifactStore:
    state = request.app.state
    return AuthorizedArtifactStore(state.artifacts, state.scopes, caller)


async def _held_artifacts(request: Request, caller: Caller) -> ArtifactStore:
    """What the server itself reads on the caller's behalf: the objects the caller holds."""
    state = request.app.state
    return AuthorizedArtifactStore(state.artifacts, state.scopes, caller).holding()


async def _catalog(request: Request, caller: Caller) -> DataCatalog:
    catalog = request.app.state.catalog
    if catalog is None:
        raise NotFound("this server keeps no data catalog")
    return AuthorizedDataCatalog(catalog, caller)


async def _graph(request: Request) -> LineageGraph:
    graph = request.app.state.lineage
    if graph is None:
        raise NotFound("this server keeps no lineage graph")
    found: LineageGraph = graph
    return found


Metadata = Annotated[MetadataStore, Depends(_metadata)]
Artifacts = Annotated[ArtifactStore, Depends(_artifacts)]
HeldArtifacts = Annotated[ArtifactStore, Depends(_held_artifacts)]
Catalog = Annotated[DataCatalog, Depends(_catalog)]
Graph = Annotated[LineageGraph, Depends(_graph)]

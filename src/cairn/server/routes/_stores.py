"""The services a hand-written route works on, as FastAPI dependencies: each built for the
request's caller by the factory ``create_app`` keeps on ``app.state``, so a route reaches
a store only through a service deciding for its caller.

The dependencies are async on purpose: FastAPI runs sync dependencies in a worker thread,
a hop the ingest path should not pay just to build a service.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from cairn.core.ports import DataCatalog, LineageGraph
from cairn.data.authorized import AuthorizedDataCatalog
from cairn.errors import NotFound
from cairn.server.auth import Caller
from cairn.server.operations import per_caller
from cairn.tracking.metadata import MetadataService
from cairn.tracking.objects import ObjectService

TRACKING = per_caller("metadata", "this server keeps no runs")
OBJECTS = per_caller("objects", "this server keeps no objects")


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


async def _held(objects: Annotated[ObjectService, OBJECTS]) -> ObjectService:
    return objects.holding()


Metadata = Annotated[MetadataService, TRACKING]
Objects = Annotated[ObjectService, OBJECTS]
Artifacts = Objects
HeldArtifacts = Annotated[ObjectService, Depends(_held)]
Catalog = Annotated[DataCatalog, Depends(_catalog)]
Graph = Annotated[LineageGraph, Depends(_graph)]

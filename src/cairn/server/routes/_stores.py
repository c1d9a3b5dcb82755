"""The services a hand-written route works on, as FastAPI dependencies: each built for the
request's caller by the factory ``create_app`` keeps on ``app.state``, so a route reaches
a store only through a service deciding for its caller.

The dependencies are async on purpose: FastAPI runs sync dependencies in a worker thread,
a hop the ingest path should not pay just to build a service.
"""

from __future__ import annotations

from typing import Annotated

from cairn.server.operations import per_caller
from cairn.tracking.metadata import MetadataService
from cairn.tracking.objects import ObjectService

TRACKING = per_caller("metadata", "this server keeps no runs")
OBJECTS = per_caller("objects", "this server keeps no objects")


Metadata = Annotated[MetadataService, TRACKING]
Objects = Annotated[ObjectService, OBJECTS]

"""The stores a route works on, as FastAPI dependencies (set on ``app.state`` by create_app).

The dependencies are async on purpose: FastAPI runs sync dependencies in a worker thread,
a hop the ingest path should not pay just to read an attribute.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from cairn.core.ports import ArtifactStore, MetadataStore


async def _metadata(request: Request) -> MetadataStore:
    store: MetadataStore = request.app.state.metadata
    return store


async def _artifacts(request: Request) -> ArtifactStore:
    store: ArtifactStore = request.app.state.artifacts
    return store


Metadata = Annotated[MetadataStore, Depends(_metadata)]
Artifacts = Annotated[ArtifactStore, Depends(_artifacts)]

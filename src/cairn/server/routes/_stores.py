"""The stores a route works on, as FastAPI dependencies (set on ``app.state`` by create_app),
wrapped for the request's caller: a route reaches a store only through its access checks.

The dependencies are async on purpose: FastAPI runs sync dependencies in a worker thread,
a hop the ingest path should not pay just to read an attribute.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from cairn.core.ports import (
    Accounts,
    ArtifactStore,
    LineageGraph,
    MetadataStore,
)
from cairn.errors import NotFound
from cairn.server.auth import Caller
from cairn.tracking.authorized import (
    AuthorizedAccounts,
    AuthorizedArtifactStore,
    AuthorizedMetadataStore,
)


async def _metadata(request: Request, caller: Caller) -> MetadataStore:
    state = request.app.state
    return AuthorizedMetadataStore(state.metadata, state.scopes, caller)


async def _artifacts(request: Request, caller: Caller) -> ArtifactStore:
    state = request.app.state
    return AuthorizedArtifactStore(state.artifacts, state.scopes, caller)


async def _graph(request: Request) -> LineageGraph:
    graph = request.app.state.lineage
    if graph is None:
        raise NotFound("this server keeps no lineage graph")
    found: LineageGraph = graph
    return found


async def _accounts(request: Request, caller: Caller) -> Accounts:
    accounts = request.app.state.accounts
    if accounts is None:
        raise NotFound("this server keeps no accounts")
    return AuthorizedAccounts(accounts, caller)


Metadata = Annotated[MetadataStore, Depends(_metadata)]
Artifacts = Annotated[ArtifactStore, Depends(_artifacts)]
AccountsStore = Annotated[Accounts, Depends(_accounts)]
Graph = Annotated[LineageGraph, Depends(_graph)]

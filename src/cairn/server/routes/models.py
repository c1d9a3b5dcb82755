"""The model registry — the routes of its table of operations
(``cairn.core.model_api``) — and lineage walks.

Each registry operation reaches the registry service built for the caller, which decides
on the models it names: one of a project the caller may not read is not there for it
(404, or 409 for a name taken), one it may read but not change is a 403 naming the
permission. A version is registered from a package already stored (``/objects``): the
server reads its manifest and files from its own store, verifies them, and scans the
pickles itself — what a client says about its package is never taken on trust.

A walk stays a route of its own: its start is one node written as two query parameters
(``kind`` and ``id``), whose visibility each capability decides, and the graph is walked
for the caller whatever a client would pass as the reader.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request

from cairn.core.data import parse_data_ref
from cairn.core.data_api import Catalog
from cairn.core.lineage import DATA_VERSION, MODEL_VERSION, RUN, Node
from cairn.core.model import parse_model_ref
from cairn.core.model_api import OPERATIONS, Registry
from cairn.errors import PermissionDenied
from cairn.server.auth import READ, Caller
from cairn.server.operations import mount, per_caller
from cairn.server.responses import JsonResponse
from cairn.server.routes._stores import Graph, Metadata
from cairn.server.routes.data import CATALOG

router = APIRouter(tags=["models"])

MAX_HOPS = 64  # the longest walk one request may ask for


_REGISTRY = per_caller("registry", "this server keeps no model registry")
mount(router, OPERATIONS, _REGISTRY)


@router.get("/lineage/walk", dependencies=[READ])
def walk(
    kind: Literal["run", "data_version", "model_version", "object"],
    node: Annotated[str, Query(alias="id")],
    graph: Graph,
    models: Annotated[Registry, _REGISTRY],
    catalog: Annotated[Catalog, CATALOG],
    metadata: Metadata,
    request: Request,
    caller: Caller,
    downstream: bool = False,
    max_hops: Annotated[int, Query(ge=0, le=MAX_HOPS)] = MAX_HOPS,
) -> JsonResponse:
    """Every lineage edge reached from the node ``(kind, id)`` going one way, at most
    ``max_hops`` steps, through the nodes the caller may read; the caller must be able to
    read the node it starts from."""
    if kind == MODEL_VERSION:
        models.resolve(parse_model_ref(node))
    elif kind == DATA_VERSION:
        catalog.get_version(parse_data_ref(node))
    elif kind == RUN:
        metadata.get_run(node)
    elif not request.app.state.scopes.readable_objects(caller, [node]):
        # an object: readable where a run, dataset or model the caller may read holds it
        raise PermissionDenied(
            f"{caller.name} may not see the lineage of {node}: it needs the 'read' "
            "permission in a project that holds it"
        )
    edges = graph.walk(Node(kind, node), downstream, max_hops, reader=caller)
    return JsonResponse({
        "edges": [
            {"src": {"kind": e.src.kind, "id": e.src.id}, "relation": e.relation,
             "dst": {"kind": e.dst.kind, "id": e.dst.id}}
            for e in edges
        ]
    })  # fmt: skip

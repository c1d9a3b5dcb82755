"""The model registry (the ModelRegistry port) and lineage walks.

A version is registered from a package already stored (``/objects``): the server reads
its manifest and files from its own store, verifies them, and scans the pickles itself —
what a client says about its package is never taken on trust.
"""

from __future__ import annotations

import contextlib
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from cairn.core.access import require_to_add
from cairn.core.data import parse_data_ref
from cairn.core.identity import DEFAULT_PROJECT
from cairn.core.lineage import DATA_VERSION, MODEL_VERSION, RUN, Node
from cairn.core.model import card_from_dict, parse_model_ref
from cairn.core.model_codec import model_version_to_dict, registered_model_to_dict
from cairn.errors import NotFound, PermissionDenied
from cairn.models.service import stored_version
from cairn.server.auth import MANAGE, READ, WRITE, Caller
from cairn.server.fields import Text, VersionNumber
from cairn.server.responses import JsonResponse
from cairn.server.routes._stores import Catalog, Graph, HeldArtifacts, Metadata, Models

router = APIRouter(tags=["models"])

_DIGEST = r"^blake3:[0-9a-f]{64}$"
MAX_HOPS = 64  # the longest walk one request may ask for


class NewVersionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    digest: str = Field(pattern=_DIGEST)  # of the stored package's manifest
    run_id: Text | None = None
    description: Text = Field(default="", max_length=10_000)
    project: Text = DEFAULT_PROJECT  # for a new model made by no run


class AliasBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: VersionNumber


@router.get("/models", dependencies=[READ])
def list_models(models: Models) -> JsonResponse:
    """Every model the caller may read."""
    return JsonResponse({"models": [registered_model_to_dict(m) for m in models.list_models()]})


@router.get("/models/resolve", dependencies=[READ])
def resolve(ref: str, models: Models) -> JsonResponse:
    """The version a reference names (``churn@champion``, ``churn/3``, ``churn``)."""
    return JsonResponse(model_version_to_dict(models.resolve(parse_model_ref(ref))))


@router.get("/models/{name}", dependencies=[READ])
def get_model(name: str, models: Models) -> JsonResponse:
    return JsonResponse(registered_model_to_dict(models.get_model(name)))


@router.get("/models/{name}/versions", dependencies=[READ])
def list_versions(name: str, models: Models) -> JsonResponse:
    """Newest first."""
    found = models.list_versions(name)
    return JsonResponse({"versions": [model_version_to_dict(v) for v in found]})


@router.post("/models/{name}/versions", status_code=201, dependencies=[WRITE])
def register_version(
    name: str,
    body: NewVersionBody,
    models: Models,
    metadata: Metadata,
    held: HeldArtifacts,
    request: Request,
    caller: Caller,
) -> JsonResponse:
    """The next version, from the stored package whose manifest has ``digest`` (upload its
    files first); in the model's project, else — for a new model — the project of the run
    that made it (which the caller must be able to read), else ``project``. The server
    reads only objects the caller holds: any other is "not stored"."""
    project: str = body.project
    owner: str | None = None
    if body.run_id is not None:
        run = metadata.get_run(body.run_id)
        project = metadata.get_experiment(run.experiment_id).project
    with contextlib.suppress(NotFound):  # a new model: the run's project, or the one asked
        owner = request.app.state.models.get_model(name).project
    require_to_add(caller, "model", name, owner, project)
    new = stored_version(held, name, body.digest, body.run_id, body.description)
    version = models.register_version(new, project)
    return JsonResponse(model_version_to_dict(version), status_code=201)


@router.put("/models/{name}/aliases/{alias}", dependencies=[MANAGE])
def set_alias(name: str, alias: str, body: AliasBody, models: Models) -> JsonResponse:
    return JsonResponse(model_version_to_dict(models.set_alias(name, alias, body.version)))


@router.delete("/models/{name}/aliases/{alias}", status_code=204, dependencies=[MANAGE])
def delete_alias(name: str, alias: str, models: Models) -> Response:
    models.delete_alias(name, alias)
    return Response(status_code=204)


@router.get("/models/{name}/versions/{version}/card", dependencies=[READ])
def get_card(name: str, version: int, models: Models) -> JsonResponse:
    return JsonResponse(models.get_card(name, version).to_dict())


@router.put("/models/{name}/versions/{version}/card", dependencies=[WRITE])
def set_card(name: str, version: int, body: dict[str, object], models: Models) -> JsonResponse:
    """Replace the card: ``intended_use``, ``limitations``, ``training_data``,
    ``ethical_considerations`` (text) and ``metrics`` (numbers)."""
    return JsonResponse(models.set_card(name, version, card_from_dict(body)).to_dict())


@router.get("/lineage/walk", dependencies=[READ])
def walk(
    kind: Literal["run", "data_version", "model_version", "object"],
    node: Annotated[str, Query(alias="id")],
    graph: Graph,
    models: Models,
    catalog: Catalog,
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

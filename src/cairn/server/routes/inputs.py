"""A run's lineage: the data versions it used (run -used-> data version), and the objects
it read and wrote (run -used-> object, run -produced-> object: a pipeline step's inputs
and output)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from cairn.server.auth import READ, WRITE
from cairn.server.fields import Text
from cairn.server.responses import JsonResponse
from cairn.server.routes._stores import Metadata

router = APIRouter(prefix="/runs", tags=["runs"])


class InputsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    refs: list[Text] = Field(max_length=1_000)  # "customers@2", or "customers" for the newest


@router.post("/{run_id}/inputs", dependencies=[WRITE])
def log_inputs(run_id: str, body: InputsBody, metadata: Metadata) -> JsonResponse:
    return JsonResponse({"inputs": metadata.log_inputs(run_id, body.refs)})


@router.get("/{run_id}/inputs", dependencies=[READ])
def get_run_inputs(run_id: str, metadata: Metadata) -> JsonResponse:
    return JsonResponse({"inputs": metadata.get_run_inputs(run_id)})


class LineageBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    used: list[Text] = Field(default=[], max_length=10_000)  # object digests
    produced: list[Text] = Field(default=[], max_length=10_000)


@router.post("/{run_id}/lineage", status_code=204, dependencies=[WRITE])
def log_lineage(run_id: str, body: LineageBody, metadata: Metadata) -> Response:
    metadata.log_lineage(run_id, body.used, body.produced)
    return Response(status_code=204)


@router.get("/{run_id}/lineage", dependencies=[READ])
def get_run_lineage(run_id: str, metadata: Metadata) -> JsonResponse:
    used, produced = metadata.get_run_lineage(run_id)
    return JsonResponse({"used": used, "produced": produced})

"""A run's inputs: the data versions it used (lineage edges run -used-> data version)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from cairn.server.auth import READ, WRITE
from cairn.server.responses import JsonResponse
from cairn.server.routes._stores import Metadata

router = APIRouter(prefix="/runs", tags=["runs"])


class InputsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    refs: list[str] = Field(max_length=1_000)  # "customers@2", or "customers" for the newest


@router.post("/{run_id}/inputs", dependencies=[WRITE])
def log_inputs(run_id: str, body: InputsBody, metadata: Metadata) -> JsonResponse:
    return JsonResponse({"inputs": metadata.log_inputs(run_id, body.refs)})


@router.get("/{run_id}/inputs", dependencies=[READ])
def get_run_inputs(run_id: str, metadata: Metadata) -> JsonResponse:
    return JsonResponse({"inputs": metadata.get_run_inputs(run_id)})

"""Experiments: create, get by id or name, list."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from cairn.core import missing
from cairn.core.codec import experiment_to_dict
from cairn.core.identity import DEFAULT_PROJECT
from cairn.core.limits import check_name
from cairn.server.auth import READ, WRITE
from cairn.server.fields import Text
from cairn.server.responses import JsonResponse
from cairn.server.routes._stores import Metadata

router = APIRouter(prefix="/experiments", tags=["experiments"])


class NewExperimentBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Text
    project: Text = DEFAULT_PROJECT


@router.post("", status_code=201, dependencies=[WRITE])
def create_experiment(body: NewExperimentBody, metadata: Metadata) -> JsonResponse:
    experiment = metadata.create_experiment(check_name(body.name, "name"), body.project)
    return JsonResponse(experiment_to_dict(experiment), status_code=201)


@router.get("", dependencies=[READ])
def list_experiments(metadata: Metadata) -> JsonResponse:
    experiments = [experiment_to_dict(e) for e in metadata.list_experiments()]
    return JsonResponse({"experiments": experiments})


# Declared before /{experiment_id}, which would otherwise match "by-name".
@router.get("/by-name", dependencies=[READ])
def get_experiment_by_name(name: str, metadata: Metadata) -> JsonResponse:
    """404 NOT_FOUND when no experiment has this name (the port returns None)."""
    experiment = metadata.get_experiment_by_name(name)
    if experiment is None:  # or one the caller may not read: the same answer
        raise missing.experiment(name)
    return JsonResponse(experiment_to_dict(experiment))


@router.get("/{experiment_id}", dependencies=[READ])
def get_experiment(experiment_id: str, metadata: Metadata) -> JsonResponse:
    return JsonResponse(experiment_to_dict(metadata.get_experiment(experiment_id)))

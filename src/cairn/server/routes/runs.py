"""Runs: create, record whole, get, resolve an id prefix, end, delete and restore, search;
the runs nested in a run, and the step run a pipeline's cache holds for a key."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from cairn.core.codec import batch_from_dict, run_to_dict
from cairn.core.ids import check_id
from cairn.core.pipeline import check_cache_key
from cairn.core.run import NewRun, Run, RunRecord, RunStatus, ViewType
from cairn.core.search import RunQuery
from cairn.server.auth import READ, WRITE
from cairn.server.fields import Int64, Text, Timestamp
from cairn.server.responses import JsonResponse
from cairn.server.routes._stores import Metadata

router = APIRouter(prefix="/runs", tags=["runs"])


class NewRunBody(BaseModel):
    """The shape of ``codec.new_run_to_dict``. The store checks each field's limits."""

    model_config = ConfigDict(extra="forbid")
    experiment_id: Text
    name: Text
    start_time: Timestamp
    # The run's user is the caller's account; a body may leave it out, or repeat it.
    user: Text | None = None
    parent_id: Text | None = None
    git_commit: Text | None = None
    source: Text | None = None
    tags: dict[str, str] = Field(default_factory=dict)


class EndRunBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: RunStatus
    end_time: Timestamp


class RunRecordBody(BaseModel):
    """The shape of ``codec.run_record_to_dict``: a run recorded whole, already ended."""

    model_config = ConfigDict(extra="forbid")
    run: NewRunBody
    status: RunStatus
    end_time: Timestamp
    params: dict[str, str] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)  # a batch, as /log-batch takes
    used: list[Text] = Field(default_factory=list)
    produced: list[Text] = Field(default_factory=list)


class RecordRunsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    runs: list[RunRecordBody] = Field(max_length=10_000)


class SearchBody(BaseModel):
    """The fields of ``RunQuery``; ``filter`` and ``order_by`` as the user wrote them."""

    model_config = ConfigDict(extra="forbid")
    experiment_ids: list[Text] = Field(default_factory=list)
    filter: Text = ""
    order_by: list[Text] = Field(default_factory=list)
    limit: Int64 = 1000
    page_token: Text | None = None
    view: ViewType = ViewType.ACTIVE


def _record(body: RunRecordBody) -> RunRecord:
    return RunRecord(
        new=NewRun(**body.run.model_dump()),
        status=body.status,
        end_time=body.end_time,
        params=body.params,
        metrics=batch_from_dict(body.metrics),
        used=body.used,
        produced=body.produced,
    )


def _run(run: Run) -> JsonResponse:
    return JsonResponse(run_to_dict(run))


@router.post("", status_code=201, dependencies=[WRITE])
def create_run(body: NewRunBody, metadata: Metadata) -> JsonResponse:
    run = metadata.create_run(NewRun(**body.model_dump()))
    return JsonResponse(run_to_dict(run), status_code=201)


@router.post("/record", status_code=201, dependencies=[WRITE])
def record_runs(body: RecordRunsBody, metadata: Metadata) -> JsonResponse:
    """Runs recorded whole and already ended, in one transaction (a pipeline's cached
    steps): one request instead of a create, a log and an end for each."""
    runs = metadata.record_runs([_record(record) for record in body.runs])
    return JsonResponse({"runs": [run_to_dict(run) for run in runs]}, status_code=201)


@router.post("/search", dependencies=[READ])
def search_runs(body: SearchBody, metadata: Metadata) -> JsonResponse:
    page = metadata.search_runs(RunQuery(**body.model_dump()))
    runs = [run_to_dict(run) for run in page.runs]
    return JsonResponse({"runs": runs, "next_page_token": page.next_page_token})


# Declared before /{run_id}, which would otherwise match "resolve" and "cached".
@router.get("/resolve", dependencies=[READ])
def resolve_run_id(ref: str, metadata: Metadata) -> JsonResponse:
    """The full id of a run from its id or a unique prefix of 8+ characters."""
    return JsonResponse({"run_id": metadata.resolve_run_id(ref)})


@router.get("/cached", dependencies=[READ])
def cached_output(
    experiment_id: str, cache_key: str, metadata: Metadata, user: str | None = None
) -> JsonResponse:
    """The step run a pipeline's cache holds for ``cache_key`` in the experiment (the
    newest; ``user``'s, when given), or null."""
    check_id(experiment_id, "experiment_id")
    run = metadata.cached_output(experiment_id, check_cache_key(cache_key), user)
    return JsonResponse({"run": None if run is None else run_to_dict(run)})


@router.get("/{run_id}", dependencies=[READ])
def get_run(run_id: str, metadata: Metadata) -> JsonResponse:
    return _run(metadata.get_run(run_id))


@router.get("/{run_id}/children", dependencies=[READ])
def child_runs(run_id: str, metadata: Metadata, view: ViewType = ViewType.ACTIVE) -> JsonResponse:
    """The runs nested directly in the run, newest first: a pipeline run's steps."""
    runs = metadata.child_runs(check_id(run_id, "run_id"), view)
    return JsonResponse({"runs": [run_to_dict(run) for run in runs]})


@router.post("/{run_id}/end", dependencies=[WRITE])
def end_run(run_id: str, body: EndRunBody, metadata: Metadata) -> JsonResponse:
    return _run(metadata.end_run(run_id, body.status, body.end_time))


@router.delete("/{run_id}", dependencies=[WRITE])
def delete_run(run_id: str, metadata: Metadata) -> JsonResponse:
    """Soft delete: the run is hidden from searches until it is restored."""
    return _run(metadata.set_run_deleted(run_id, True))


@router.post("/{run_id}/restore", dependencies=[WRITE])
def restore_run(run_id: str, metadata: Metadata) -> JsonResponse:
    return _run(metadata.set_run_deleted(run_id, False))

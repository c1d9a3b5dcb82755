"""A run's artifact manifest (path -> digest), and one of its files as a download."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, StrictInt
from starlette.responses import Response, StreamingResponse

from cairn.core import missing
from cairn.core.access import Permission, require_on
from cairn.core.artifact import ArtifactEntry, check_entries, clean_artifact_path
from cairn.core.codec import entry_to_dict
from cairn.core.limits import INT64_MAX
from cairn.errors import NotFound
from cairn.server.auth import READ, WRITE, Caller
from cairn.server.responses import JsonResponse
from cairn.server.routes._stores import Artifacts, Metadata
from cairn.server.streams import object_response
from cairn.tracking.stored import check_stored

router = APIRouter(prefix="/runs", tags=["artifacts"])


class EntryBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str  # checked with the rest of the entry (check_entries), as the store checks it
    digest: str
    size: StrictInt = Field(ge=0, le=INT64_MAX)


class EntriesBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    entries: list[EntryBody]


@router.post("/{run_id}/artifacts", status_code=204, dependencies=[WRITE])
def add_artifacts(
    run_id: str,
    body: EntriesBody,
    metadata: Metadata,
    artifacts: Artifacts,
    request: Request,
    caller: Caller,
) -> Response:
    """Add files to the manifest; a path logged again is replaced. Each file is an object
    the caller has stored (or may read), with its size."""
    entries = check_entries([ArtifactEntry(e.path, e.digest, e.size) for e in body.entries])
    # Who may not write to the run is refused before the objects are looked at (and
    # learns nothing of them); the store decides again as it records them.
    project = request.app.state.scopes.run_project(run_id)
    what = f"add artifacts to run {run_id}"
    require_on(caller, Permission.WRITE, project, what, missing.run(run_id))
    check_stored(artifacts, entries)
    metadata.add_artifacts(run_id, entries)
    return Response(status_code=204)


@router.get("/{run_id}/artifacts", dependencies=[READ])
def list_artifacts(run_id: str, metadata: Metadata, prefix: str = "") -> JsonResponse:
    """Every manifest file under ``prefix`` (all of them when it is empty)."""
    entries = metadata.list_artifacts(run_id, clean_artifact_path(prefix, "prefix"))
    return JsonResponse({"artifacts": [entry_to_dict(e) for e in entries]})


@router.get("/{run_id}/artifacts/file", response_class=StreamingResponse, dependencies=[READ])
def download_artifact(
    run_id: str, path: str, metadata: Metadata, artifacts: Artifacts
) -> StreamingResponse:
    """The bytes of one file of the manifest, verified while they are sent."""
    wanted = clean_artifact_path(path, "path")
    entry = next((e for e in metadata.list_artifacts(run_id, wanted) if e.path == wanted), None)
    if entry is None or entry.digest is None:
        raise NotFound(f"run {run_id} has no artifact file {wanted!r} (see `cairn artifacts ls`)")
    filename = wanted.rpartition("/")[2]
    headers = {
        "ETag": f'"{entry.digest}"',
        # A download, never rendered inline: an HTML artifact must not run as this origin.
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename, safe='')}",
        "X-Content-Type-Options": "nosniff",
    }
    return object_response(artifacts, entry.digest, headers=headers, abort_if_corrupt=True)

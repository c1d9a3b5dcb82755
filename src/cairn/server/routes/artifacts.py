"""A run's artifact manifest (path -> digest), and one of its files as a download."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StrictInt
from starlette.responses import Response, StreamingResponse

from cairn.core.artifact import ArtifactEntry, check_digest, clean_artifact_path
from cairn.core.codec import entry_to_dict
from cairn.errors import NotFound
from cairn.server.auth import READ, WRITE
from cairn.server.responses import JsonResponse
from cairn.server.routes._stores import Artifacts, Metadata
from cairn.server.streams import object_response

router = APIRouter(prefix="/runs", tags=["artifacts"])


class EntryBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str
    digest: str
    size: StrictInt = Field(ge=0)


class EntriesBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    entries: list[EntryBody]


@router.post("/{run_id}/artifacts", status_code=204, dependencies=[WRITE])
def add_artifacts(run_id: str, body: EntriesBody, metadata: Metadata) -> Response:
    """Add files to the manifest; a path logged again is replaced."""
    entries = [
        ArtifactEntry(clean_artifact_path(e.path, "path"), check_digest(e.digest), e.size)
        for e in body.entries
    ]
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

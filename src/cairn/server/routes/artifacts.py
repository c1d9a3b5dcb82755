"""One file of a run's artifact manifest, as a download: a route of its own beside
tracking's table (``cairn.server.routes.tracking``), since its answer is a stream."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter
from starlette.responses import StreamingResponse

from cairn.server.auth import AUTHENTICATED
from cairn.server.routes._stores import Metadata, Objects
from cairn.server.streams import object_response

router = APIRouter(prefix="/runs", tags=["artifacts"])


@router.get(
    "/{run_id}/artifacts/file", response_class=StreamingResponse, dependencies=[AUTHENTICATED]
)
def download_artifact(
    run_id: str, path: str, metadata: Metadata, objects: Objects
) -> StreamingResponse:
    """The bytes of one file of the manifest, verified while they are sent."""
    entry = metadata.artifact_file(run_id, path)
    filename = entry.path.rpartition("/")[2]
    headers = {
        "ETag": f'"{entry.digest}"',
        # A download, never rendered inline: an HTML artifact must not run as this origin.
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename, safe='')}",
        "X-Content-Type-Options": "nosniff",
    }
    return object_response(objects, str(entry.digest), headers=headers, abort_if_corrupt=True)

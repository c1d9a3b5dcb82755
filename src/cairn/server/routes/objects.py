"""Content-addressed objects: which exist (the routes of the objects' table of operations,
``cairn.core.tracking_api``), and their bytes, uploaded and downloaded as streams.

What exists is told only of the objects the caller holds (may read, or uploaded): any
other is "missing", so a client uploads it, which proves it has the bytes and is recorded
(see ``cairn.tracking.objects``). Any valid token reaches a route; the object service
built for the caller decides.
"""

from __future__ import annotations

from functools import partial
from typing import BinaryIO, cast

from anyio import to_thread
from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse

from cairn.core.access import Principal
from cairn.core.codec import object_to_dict
from cairn.core.tracking_api import OBJECT_OPERATIONS
from cairn.server.auth import AUTHENTICATED, Caller
from cairn.server.operations import mount
from cairn.server.responses import JsonResponse
from cairn.server.routes._stores import OBJECTS, Objects
from cairn.server.streams import object_response, spooled_body
from cairn.tracking.objects import ObjectService

router = APIRouter(tags=["objects"])

_RAW_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


mount(router, OBJECT_OPERATIONS, OBJECTS)


@router.put(
    "/objects/{digest}", status_code=201, openapi_extra=_RAW_BODY, dependencies=[AUTHENTICATED]
)
async def put_object(
    digest: str, request: Request, artifacts: Objects, caller: Caller
) -> JsonResponse:
    """Store the streamed body under ``digest``; 500 INTEGRITY_ERROR, and nothing kept, if
    the bytes hash to something else. 503 SERVER_BUSY (Retry-After) when the server or the
    caller's account is receiving all the uploads it may at once; 408 when the body stops
    arriving."""
    return await _put(artifacts, request, caller, digest)


@router.post("/objects", status_code=201, openapi_extra=_RAW_BODY, dependencies=[AUTHENTICATED])
async def post_object(request: Request, artifacts: Objects, caller: Caller) -> JsonResponse:
    """Store the streamed body and answer its digest (for senders that do not know it)."""
    return await _put(artifacts, request, caller, None)


@router.get("/objects/{digest}", response_class=StreamingResponse, dependencies=[AUTHENTICATED])
def get_object(digest: str, artifacts: Objects) -> StreamingResponse:
    """The object's bytes; the client hashes them, so a corrupt object is reported there."""
    headers = {"ETag": f'"{digest}"'}
    return object_response(artifacts, digest, headers=headers, abort_if_corrupt=False)


@router.head("/objects/{digest}", dependencies=[AUTHENTICATED])
def head_object(digest: str, artifacts: Objects) -> Response:
    """200 if the store holds the object for the caller, 404 if not (as ``missing``)."""
    return Response(status_code=404 if artifacts.missing([digest]) else 200)


async def _put(
    artifacts: ObjectService, request: Request, caller: Principal, digest: str | None
) -> JsonResponse:
    """Receive the body on the event loop, then store it in a worker thread, holding one of
    the caller's upload slots throughout (``cairn.server.limits``)."""
    artifacts.require_storing()  # before the body is received
    state = request.app.state
    with state.upload_slots.taken(caller.name if caller.account else None):
        body = await spooled_body(request, state.upload_threads)
        with body:
            stream = cast(BinaryIO, body)  # a binary file, though typeshed does not say so
            store = partial(artifacts.put_stream, stream, expected_digest=digest)
            info = await to_thread.run_sync(store, limiter=state.upload_threads)
    return JsonResponse(object_to_dict(info), status_code=201)

"""Request and response bodies between the async server and the sync ArtifactStore port.

Request bodies are read on the event loop, never by a worker thread waiting on the client:
a slow or stalled client then holds a connection, not one of the threads every other
request needs. ``BodyIdleTimeout`` drops a request whose body stops arriving (408), so a
stalled one does not hold even that for long.

Uploads: ``spooled_body`` receives the whole body into a temporary file (in memory up to
``CHUNK_SIZE``, on disk beyond) before ``ArtifactStore.put_stream`` hashes and stores it in
a worker thread. A body that never completes reaches no store. The price is that a large
object is written twice; the alternative, a thread reading the body as the store consumes
it, let a client that sends nothing hold that thread.

Downloads: ``object_response`` opens the object before answering, so a missing object is a
clean 404, and streams its verified chunks; Starlette iterates the sync iterator in a
worker thread, one chunk at a time, so a slow reader holds no thread between chunks.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import ExitStack
from tempfile import SpooledTemporaryFile

from anyio import CapacityLimiter, move_on_after, to_thread
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import StreamingResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cairn.core.ports import ArtifactStore
from cairn.errors import IntegrityError, InvalidInput

CHUNK_SIZE = 1 << 20  # written to the spool at a time; a body this small stays in memory
logger = logging.getLogger("cairn.server")

Spool = SpooledTemporaryFile[bytes]


class BodyIdleTimeout:
    """Drops a request whose body sends nothing for ``seconds``: the route reading it gets
    an HTTP 408, and the connection is closed. Only the body is timed: once it is complete,
    the app may wait on the client (for a disconnect) as long as it likes."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body_complete = False

        async def receive_in_time() -> Message:
            nonlocal body_complete
            if body_complete:
                return await receive()
            with move_on_after(self.seconds):
                message = await receive()
                body_complete = not message.get("more_body", False)
                return message
            raise HTTPException(
                408,
                f"the request body sent nothing for {self.seconds:g} s; it was dropped",
                headers={"Connection": "close"},  # the rest of the body is not read
            )

        await self.app(scope, receive_in_time, send)


async def spooled_body(request: Request, threads: CapacityLimiter) -> Spool:
    """The whole request body in a temporary file, read back from its start; disk writes
    run in ``threads``. The caller closes it.

    Raises:
        InvalidInput: the client disconnected before the end of the body.
        HTTPException: 408, the body stopped arriving (``BodyIdleTimeout``).
    """
    spool: Spool = SpooledTemporaryFile(max_size=CHUNK_SIZE)  # noqa: SIM115  # returned open
    try:
        pending, spooled = bytearray(), 0
        async for chunk in request.stream():
            pending += chunk
            if len(pending) >= CHUNK_SIZE:
                await to_thread.run_sync(spool.write, pending, limiter=threads)
                pending, spooled = bytearray(), spooled + len(pending)
        if spooled + len(pending) <= CHUNK_SIZE:  # all in memory: no disk to wait for
            _finish(spool, pending)
        else:
            await to_thread.run_sync(_finish, spool, pending, limiter=threads)
    except ClientDisconnect as exc:
        spool.close()
        raise InvalidInput("the upload was cut short: the client disconnected") from exc
    except BaseException:
        spool.close()
        raise
    return spool


def _finish(spool: Spool, rest: bytearray) -> None:
    spool.write(rest)
    spool.seek(0)


def object_response(
    artifacts: ArtifactStore, digest: str, *, headers: dict[str, str], abort_if_corrupt: bool
) -> StreamingResponse:
    """Stream an object's verified chunks; call it from a worker thread (it opens the object).

    A corrupt object is noticed only after its last chunk has been sent. ``abort_if_corrupt``
    then breaks the connection, so a plain HTTP client sees a failed download; without it the
    stream ends normally and a Cairn client, which hashes what it receives, raises
    IntegrityError itself, as it would against a local store.

    Raises:
        NotFound: the store does not hold the digest (before any byte is sent).
    """
    stack = ExitStack()
    chunks = stack.enter_context(artifacts.open(digest))
    body = _closing_chunks(stack, chunks, abort_if_corrupt)
    return StreamingResponse(body, media_type="application/octet-stream", headers=headers)


def _closing_chunks(stack: ExitStack, chunks: Iterator[bytes], abort: bool) -> Iterator[bytes]:
    with stack:
        try:
            yield from chunks
        except IntegrityError as exc:
            logger.error("served a corrupt object: %s", exc.message)
            if abort:
                raise

"""Bridges between the async server and the sync ArtifactStore port, in both directions.

Uploads: ``ArtifactStore.put_stream`` is sync and reads a file, while the request body is
an async iterator. ``request_body_file`` gives put_stream a blocking file whose reads pull
the next body chunk from the event loop (``anyio.from_thread.run``) while put_stream runs in
a worker thread. Only one chunk is in flight, so memory stays flat and a slow store slows
the upload down (TCP back-pressure) instead of buffering it. The alternatives were worse:
``await request.body()`` holds the whole object in memory, and spooling to a temporary file
first writes every byte twice.

Downloads: ``object_response`` opens the object before answering, so a missing object is a
clean 404, and streams its verified chunks; Starlette iterates the sync iterator in a
worker thread.
"""

from __future__ import annotations

import io
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from typing import TYPE_CHECKING

from anyio import from_thread
from starlette.requests import ClientDisconnect, Request
from starlette.responses import StreamingResponse

from cairn.core.ports import ArtifactStore
from cairn.errors import IntegrityError, InvalidInput

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

CHUNK_SIZE = 1 << 20  # what put_stream reads at a time; a few body chunks each
logger = logging.getLogger("cairn.server")


class _RequestBodyRaw(io.RawIOBase):
    """A blocking raw file over an ASGI body; read it only from an anyio worker thread."""

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        if not self._pending:
            self._pending = memoryview(from_thread.run(self._next_chunk))
        target = memoryview(buffer).cast("B")
        size = min(len(target), len(self._pending))
        target[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size

    async def _next_chunk(self) -> bytes:
        try:
            async for chunk in self._chunks:
                if chunk:
                    return chunk
        except ClientDisconnect as exc:
            raise InvalidInput("the upload was cut short: the client disconnected") from exc
        return b""  # end of the body


def request_body_file(request: Request) -> io.BufferedReader:
    """The request body as a file for sync code running in a worker thread."""
    return io.BufferedReader(_RequestBodyRaw(request.stream()), buffer_size=CHUNK_SIZE)


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

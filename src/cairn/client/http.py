"""Tracking and the artifact store over a Cairn server's REST API (made from their tables
of operations, ``cairn.core.tracking_api``), so the SDK runs unchanged against it.

Remote calls raise the classes local calls raise (see ``transport``). Objects are hashed
here, on the client, so that ``put_file`` uploads only what the server lacks and ``open``
verifies what arrives, whatever the server did.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from cairn.client.operations import OperationClient
from cairn.client.transport import api_path
from cairn.core.artifact import HASH_NAME, ObjectInfo, check_digest
from cairn.core.codec import batch_to_dict, object_from_dict
from cairn.core.run import MetricBatch, MetricPoint, Run
from cairn.core.tracking_api import OBJECT_OPERATIONS, OPERATIONS
from cairn.errors import IntegrityError, InvalidInput, ServerBusy
from cairn.localfs.atomic import write_atomically
from cairn.localfs.digest import CHUNK_SIZE, hash_file, read_chunks, verified


class HttpMetadataStore(OperationClient):
    """The :class:`~cairn.core.tracking_api.Tracking` service of a Cairn server, made from
    its table of operations; recording a batch has a route of its own."""

    operations = OPERATIONS

    def set_run_deleted(self, run_id: str, deleted: bool) -> Run:
        found: Run = self.delete_run(run_id) if deleted else self.restore_run(run_id)
        return found

    # recording

    def log_batch(
        self,
        run_id: str,
        metrics: MetricBatch | Sequence[MetricPoint] = (),
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
        batch_id: str | None = None,
    ) -> None:
        """One request, columnar and packed; not retried here (the SDK's flusher retries
        with the same ``batch_id``, which the server stores once)."""
        body = {
            "metrics": batch_to_dict(metrics, packed=True),
            "params": dict(params or {}),
            "tags": dict(tags or {}),
            "batch_id": batch_id,
        }
        self._http.call("POST", api_path("runs", run_id, "batch"), json=body)


# A server at its limit of uploads at once answers 503 with Retry-After: a file upload
# waits that long (at most _BUSY_WAIT_SECONDS) and tries again, this many times in all.
_BUSY_TRIES = 5
_BUSY_WAIT_SECONDS = 10


class HttpArtifactStore(OperationClient):
    """The :class:`~cairn.core.ports.ArtifactStore` of a Cairn server: which objects it
    holds from its table of operations, the bytes through routes of their own."""

    operations = OBJECT_OPERATIONS

    def put_file(self, path: Path) -> ObjectInfo:
        """Hash the file locally and upload it only if the server lacks it.

        Raises:
            IntegrityError: the file changed between hashing and upload; nothing was kept.
        """
        path = Path(path)
        size = path.stat().st_size
        digest = hash_file(path)
        if not self.missing([digest]):
            return ObjectInfo(digest, size)
        for attempt in range(_BUSY_TRIES):
            try:
                with path.open("rb") as stream:  # httpx reads it in chunks, sends its length
                    data = self._http.call("PUT", api_path("objects", digest), content=stream)
                return object_from_dict(data)
            except ServerBusy as busy:  # at its limit of uploads at once: a file can wait
                if attempt == _BUSY_TRIES - 1:
                    raise
                time.sleep(min(busy.retry_after or 1, _BUSY_WAIT_SECONDS))
        raise AssertionError("unreachable")

    def put_stream(self, stream: BinaryIO, expected_digest: str | None = None) -> ObjectInfo:
        """Upload a stream in chunks; the server hashes it.

        Raises:
            InvalidInput: ``expected_digest`` is not a BLAKE3 digest.
            IntegrityError: the bytes do not hash to ``expected_digest``; nothing was kept.
        """
        chunks = read_chunks(stream)
        if expected_digest is None:
            data = self._http.call("POST", api_path("objects"), content=chunks)
        else:
            path = api_path("objects", _check_blake3(expected_digest))
            data = self._http.call("PUT", path, content=chunks)
        return object_from_dict(data)

    def missing(self, digests: Iterable[str]) -> set[str]:
        wanted = sorted(set(digests))
        if not wanted:
            return set()
        found: set[str] = self._call(self.operations["missing"], {"digests": wanted})
        return found

    def sizes(self, digests: Iterable[str]) -> dict[str, int]:
        wanted = sorted(set(digests))
        if not wanted:
            return {}
        found: dict[str, int] = self._call(self.operations["sizes"], {"digests": wanted})
        return found

    @contextmanager
    def open(self, digest: str) -> Generator[Iterator[bytes], None, None]:
        """Stream an object in chunks, hashed as they arrive.

        Raises:
            NotFound: the server does not hold the digest.
            IntegrityError: (when the last chunk is read) the bytes do not match the digest.
        """
        _check_blake3(digest)
        with self._http.stream("GET", api_path("objects", digest)) as response:
            yield _verified(response.iter_bytes(CHUNK_SIZE), digest, self._http.base_url)

    def get_file(self, digest: str, dest: Path) -> None:
        """Write an object to ``dest`` atomically and verified, creating parent folders.

        Raises:
            NotFound, IntegrityError: ``dest`` is left untouched.
        """
        with self.open(digest) as chunks:
            write_atomically(chunks, Path(dest))


def _check_blake3(digest: str) -> str:
    if not check_digest(digest).startswith(f"{HASH_NAME}:"):
        raise InvalidInput(f"digest {digest!r}: a Cairn server addresses objects by {HASH_NAME}")
    return digest


def _verified(chunks: Iterator[bytes], digest: str, source: str) -> Iterator[bytes]:
    def mismatch(actual: str) -> IntegrityError:
        return IntegrityError(
            f"object {digest} from the Cairn server at {source} is corrupt: its bytes hash to "
            f"{actual}. Ask the server's operator to check the artifact store (see its log)."
        )

    return verified(chunks, digest, mismatch)

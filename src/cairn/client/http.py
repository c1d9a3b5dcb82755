"""The two ports over a Cairn server's REST API, so the SDK runs unchanged against it.

Remote calls raise the classes local calls raise (see ``transport``). Objects are hashed
here, on the client, so that ``put_file`` uploads only what the server lacks and ``open``
verifies what arrives, whatever the server did.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Generator, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from cairn.client.transport import ServerStore, api_path
from cairn.core.artifact import HASH_NAME, ArtifactEntry, ObjectInfo, check_digest
from cairn.core.codec import (
    batch_from_dict,
    batch_to_dict,
    entry_from_dict,
    entry_to_dict,
    experiment_from_dict,
    new_run_to_dict,
    object_from_dict,
    query_to_dict,
    run_from_dict,
    run_record_to_dict,
)
from cairn.core.identity import DEFAULT_PROJECT
from cairn.core.run import (
    Experiment,
    Metric,
    MetricBatch,
    MetricPoint,
    NewRun,
    Run,
    RunRecord,
    RunStatus,
    ViewType,
)
from cairn.core.search import RunPage, RunQuery
from cairn.errors import IntegrityError, InvalidInput, NotFound, ServerBusy
from cairn.localfs.atomic import write_atomically
from cairn.localfs.digest import CHUNK_SIZE, hash_file, read_chunks, verified


class HttpMetadataStore(ServerStore):
    """The :class:`~cairn.core.ports.MetadataStore` of a Cairn server."""

    # experiments

    def create_experiment(self, name: str, project: str = DEFAULT_PROJECT) -> Experiment:
        # The default project is left out: servers that predate projects assume it too.
        body = {"name": name} if project == DEFAULT_PROJECT else {"name": name, "project": project}
        return experiment_from_dict(self._http.call("POST", api_path("experiments"), json=body))

    def get_experiment(self, experiment_id: str) -> Experiment:
        return experiment_from_dict(self._http.call("GET", api_path("experiments", experiment_id)))

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        try:
            data = self._http.call("GET", api_path("experiments", "by-name"), params={"name": name})
        except NotFound:
            return None
        return experiment_from_dict(data)

    def list_experiments(self) -> list[Experiment]:
        data = self._http.call("GET", api_path("experiments"))
        return [experiment_from_dict(e) for e in data["experiments"]]

    # runs

    def create_run(self, new: NewRun) -> Run:
        body = new_run_to_dict(_as_caller(new))
        return run_from_dict(self._http.call("POST", api_path("runs"), json=body))

    def get_run(self, run_id: str) -> Run:
        return run_from_dict(self._http.call("GET", api_path("runs", run_id)))

    def resolve_run_id(self, ref: str) -> str:
        data = self._http.call("GET", api_path("runs", "resolve"), params={"ref": ref})
        return str(data["run_id"])

    def end_run(self, run_id: str, status: RunStatus, end_time: int) -> Run:
        body = {"status": RunStatus(status).value, "end_time": end_time}
        return run_from_dict(self._http.call("POST", api_path("runs", run_id, "end"), json=body))

    def record_runs(self, records: Sequence[RunRecord]) -> list[Run]:
        mine = [dataclasses.replace(record, new=_as_caller(record.new)) for record in records]
        body = {"runs": [run_record_to_dict(record) for record in mine]}
        found = self._http.call("POST", api_path("runs", "record"), json=body)
        return [run_from_dict(run) for run in found["runs"]]

    def set_run_deleted(self, run_id: str, deleted: bool) -> Run:
        if deleted:
            return run_from_dict(self._http.call("DELETE", api_path("runs", run_id)))
        return run_from_dict(self._http.call("POST", api_path("runs", run_id, "restore")))

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

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        path = api_path("runs", run_id, "metrics", "history")
        data = self._http.call("GET", path, params={"key": key})
        series = batch_from_dict(data["metrics"]).get(key)
        return series.points(key) if series is not None else []

    def search_runs(self, query: RunQuery) -> RunPage:
        data = self._http.call("POST", api_path("runs", "search"), json=query_to_dict(query))
        return RunPage([run_from_dict(r) for r in data["runs"]], data["next_page_token"])

    # inputs

    def log_inputs(self, run_id: str, refs: Sequence[str]) -> list[str]:
        data = self._http.call(
            "POST", api_path("runs", run_id, "inputs"), json={"refs": list(refs)}
        )
        return [str(ref) for ref in data["inputs"]]

    def get_run_inputs(self, run_id: str) -> list[str]:
        data = self._http.call("GET", api_path("runs", run_id, "inputs"))
        return [str(ref) for ref in data["inputs"]]

    def log_lineage(self, run_id: str, used: Sequence[str], produced: Sequence[str]) -> None:
        body = {"used": list(used), "produced": list(produced)}
        self._http.call("POST", api_path("runs", run_id, "lineage"), json=body)

    def get_run_lineage(self, run_id: str) -> tuple[list[str], list[str]]:
        data = self._http.call("GET", api_path("runs", run_id, "lineage"))
        return [str(d) for d in data["used"]], [str(d) for d in data["produced"]]

    # pipelines

    def child_runs(self, run_id: str, view: ViewType = ViewType.ACTIVE) -> list[Run]:
        path = api_path("runs", run_id, "children")
        data = self._http.call("GET", path, params={"view": ViewType(view).value})
        return [run_from_dict(run) for run in data["runs"]]

    def cached_output(
        self, experiment_id: str, cache_key: str, user: str | None = None
    ) -> Run | None:
        params = {"experiment_id": experiment_id, "cache_key": cache_key}
        if user is not None:
            params["user"] = user
        data = self._http.call("GET", api_path("runs", "cached"), params=params)
        return None if data["run"] is None else run_from_dict(data["run"])

    # artifacts

    def add_artifacts(self, run_id: str, entries: Sequence[ArtifactEntry]) -> None:
        body = {"entries": [entry_to_dict(e) for e in entries]}
        self._http.call("POST", api_path("runs", run_id, "artifacts"), json=body)

    def list_artifacts(self, run_id: str, prefix: str = "") -> list[ArtifactEntry]:
        path = api_path("runs", run_id, "artifacts")
        data = self._http.call("GET", path, params={"prefix": prefix})
        return [entry_from_dict(e) for e in data["artifacts"]]


# A server at its limit of uploads at once answers 503 with Retry-After: a file upload
# waits that long (at most _BUSY_WAIT_SECONDS) and tries again, this many times in all.
_BUSY_TRIES = 5
_BUSY_WAIT_SECONDS = 10


class HttpArtifactStore(ServerStore):
    """The :class:`~cairn.core.ports.ArtifactStore` of a Cairn server."""

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
        data = self._http.call("POST", api_path("objects", "missing"), json={"digests": wanted})
        return set(data["missing"])

    def sizes(self, digests: Iterable[str]) -> dict[str, int]:
        wanted = sorted(set(digests))
        if not wanted:
            return {}
        data = self._http.call("POST", api_path("objects", "sizes"), json={"digests": wanted})
        return {str(digest): int(size) for digest, size in data["sizes"].items()}

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


def _as_caller(new: NewRun) -> NewRun:
    """A server makes the account whose token calls it the user of the runs it starts
    (``cairn.core.run.run_user``): the name this process runs under is not the client's to
    claim there, and a name other than the account's would be refused."""
    return dataclasses.replace(new, user=None)

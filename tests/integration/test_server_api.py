"""The REST server in a real process, and the HTTP client stores against it."""

from __future__ import annotations

import asyncio
import io
import math
import os
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import blake3
import httpx
import pytest

from cairn._version import __version__
from cairn.client.http import HttpArtifactStore, HttpMetadataStore
from cairn.core.artifact import ArtifactEntry, object_key
from cairn.core.authorizer import Authorizer
from cairn.core.codec import batch_to_dict
from cairn.core.run import NewRun, Run, RunStatus, ViewType
from cairn.core.search import RunQuery
from cairn.errors import (
    AlreadyExists,
    AmbiguousReference,
    DigestMismatch,
    FilterSyntaxError,
    IntegrityError,
    InvalidInput,
    InvalidState,
    NotFound,
    ParamConflict,
    ServerUnavailable,
    error_from_code,
)
from cairn.server.app import create_app
from cairn.stores.metadata.sql import SqlMetadataStore
from cairn.tracking.metadata import MetadataService
from cairn.tracking.objects import ObjectService
from server_process import free_port, running_server

MISSING_RUN = "0" * 32


@pytest.fixture(scope="module")
def artifacts_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("artifacts")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, artifacts_dir: Path) -> Iterator[str]:
    db = tmp_path_factory.mktemp("db") / "cairn.db"
    with running_server(f"sqlite:///{db}", str(artifacts_dir)) as base_url:
        yield base_url


@pytest.fixture
def api(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, timeout=30) as client:
        yield client


@pytest.fixture
def metadata(server: str) -> Iterator[HttpMetadataStore]:
    store = HttpMetadataStore(server)
    yield store
    store.close()


@pytest.fixture
def artifacts(server: str) -> Iterator[HttpArtifactStore]:
    store = HttpArtifactStore(server)
    yield store
    store.close()


def new_run(metadata: HttpMetadataStore, **tags: str) -> Run:
    experiment = metadata.create_experiment(f"exp-{uuid.uuid4().hex[:8]}")
    return metadata.create_run(NewRun(experiment.id, "run", 1_000, "tester", tags=tags))


def error_of(response: httpx.Response) -> dict[str, Any]:
    error: dict[str, Any] = response.json()["error"]
    return error


def asgi_get(app: Any, path: str) -> httpx.Response:
    """A GET answered by the app in this process, an exception included as a response."""
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)

    async def call() -> httpx.Response:
        async with httpx.AsyncClient(transport=transport, base_url="http://cairn") as client:
            return await client.get(path)

    return asyncio.run(call())


def blake3_of(data: bytes) -> str:
    return f"blake3:{blake3.blake3(data).hexdigest()}"


# health and documentation


def test_health_reports_ok_and_the_version(api: httpx.Client) -> None:
    response = api.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "version": __version__}


def test_openapi_documents_every_resource_and_the_batch_body(api: httpx.Client) -> None:
    document = api.get("/openapi.json").json()
    paths = document["paths"]
    for path in (
        "/api/v1/experiments",
        "/api/v1/experiments/by-name",
        "/api/v1/runs/search",
        "/api/v1/runs/{run_id}/batch",
        "/api/v1/runs/{run_id}/metrics/history",
        "/api/v1/runs/{run_id}/artifacts/file",
        "/api/v1/objects/{digest}",
        "/api/v1/objects/missing",
    ):
        assert path in paths
    batch = paths["/api/v1/runs/{run_id}/batch"]["post"]["requestBody"]
    schema = batch["content"]["application/json"]["schema"]
    series = schema["properties"]["metrics"]["additionalProperties"]
    assert set(series["required"]) == {"values", "steps", "timestamps"}


# errors: one shape, the same classes on the client


def test_unknown_run_is_404_not_found(api: httpx.Client, metadata: HttpMetadataStore) -> None:
    response = api.get(f"/api/v1/runs/{MISSING_RUN}")
    assert response.status_code == 404
    assert error_of(response)["code"] == "NOT_FOUND"
    with pytest.raises(NotFound, match="not found"):
        metadata.get_run(MISSING_RUN)


def test_param_conflict_is_409(api: httpx.Client, metadata: HttpMetadataStore) -> None:
    run = new_run(metadata)
    assert api.post(f"/api/v1/runs/{run.id}/batch", json={"params": {"lr": "0.1"}}).is_success
    response = api.post(f"/api/v1/runs/{run.id}/batch", json={"params": {"lr": "0.2"}})
    assert response.status_code == 409
    assert error_of(response)["code"] == "PARAM_CONFLICT"
    with pytest.raises(ParamConflict, match="immutable"):
        metadata.log_batch(run.id, params={"lr": "0.3"})


def test_malformed_filter_is_400_with_a_caret(
    api: httpx.Client, metadata: HttpMetadataStore
) -> None:
    response = api.post("/api/v1/runs/search", json={"filter": "metrics.acc >"})
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "INVALID_FILTER"
    assert "^" in error["message"]
    with pytest.raises(FilterSyntaxError, match=r"\^"):
        metadata.search_runs(RunQuery(filter="metrics.acc >"))


@pytest.mark.parametrize(
    ("method", "path", "sent", "field"),
    [
        ("POST", "/api/v1/experiments", {}, "name"),
        ("POST", "/api/v1/runs/search", {"limit": "many"}, "limit"),
        ("POST", "/api/v1/runs/search", {"view": "gone"}, "view"),
        ("POST", "/api/v1/runs/search", {"filtre": "x"}, "filtre"),
        ("GET", "/api/v1/runs/cached", {"experiment_id": "x", "cache_key": "blake3:" + "c" * 64},
         "experiment_id"),
        ("GET", "/api/v1/runs/cached", {"experiment_id": "0" * 32, "cache_key": "md5:c"},
         "cache_key"),
        ("GET", "/api/v1/runs/cached", {"experiment_id": "0" * 32}, "cache_key"),
        ("GET", "/api/v1/runs/not-a-run/children", {}, "run_id"),
        ("GET", f"/api/v1/runs/{MISSING_RUN}/children", {"view": "gone"}, "view"),
    ],
)  # fmt: skip
def test_invalid_request_is_400_naming_the_field(
    api: httpx.Client, method: str, path: str, sent: dict[str, Any], field: str
) -> None:
    """A body's fields, or a query's parameters and a path's."""
    where = {"json": sent} if method == "POST" else {"params": sent}
    response = api.request(method, path, **where)
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "INVALID_INPUT"
    assert error["message"].startswith(f"{field}:")


def test_malformed_batch_is_400_invalid_input(
    api: httpx.Client, metadata: HttpMetadataStore
) -> None:
    run = new_run(metadata)
    for body in (b"{not json", b"[]", b'{"metrics": {"keys": ["a"], "values": []}}'):
        response = api.post(f"/api/v1/runs/{run.id}/batch", content=body)
        assert response.status_code == 400, body
        assert error_of(response)["code"] == "INVALID_INPUT"


def test_unknown_route_answers_in_the_error_shape(api: httpx.Client) -> None:
    response = api.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert error_of(response)["code"] == "NO_ROUTE"


def test_unexpected_exception_is_500_internal_without_details() -> None:
    class BrokenStore:
        def list_experiments(self) -> list[Any]:
            raise RuntimeError("secret connection string")

    app = create_app(lambda _: BrokenStore(), lambda _: BrokenStore())  # type: ignore[arg-type,return-value]
    response = asgi_get(app, "/api/v1/experiments")
    assert response.status_code == 500
    assert error_of(response)["code"] == "INTERNAL"
    assert "secret" not in response.text
    assert "Traceback" not in response.text


def test_a_database_out_of_reach_is_503_without_its_address(tmp_path: Path) -> None:
    """The server's database cannot be opened: a 503 the client raises as StoreUnavailable
    (a ServerUnavailable, so the SDK's flusher retries it); the address is for the log."""
    db = tmp_path / "c.db"
    store = SqlMetadataStore(f"sqlite:///{db}")
    store.engine.dispose()
    for leftover in tmp_path.glob("c.db*"):
        leftover.unlink()
    db.write_text("not a database")
    app = create_app(lambda caller: MetadataService(store, store, Authorizer(caller)),
                     lambda caller: ObjectService(store, store, Authorizer(caller)))  # type: ignore[arg-type]  # fmt: skip
    response = asgi_get(app, "/api/v1/experiments")
    assert response.status_code == 503
    assert error_of(response)["code"] == "STORE_UNAVAILABLE"
    assert str(tmp_path) not in response.text
    assert isinstance(error_from_code("STORE_UNAVAILABLE", "retry"), ServerUnavailable)


def test_unreachable_server_raises_server_unavailable_quickly() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    store = HttpMetadataStore(url)
    started = time.monotonic()
    with pytest.raises(ServerUnavailable) as caught:
        store.list_experiments()
    assert time.monotonic() - started < 5
    message = str(caught.value)
    assert url in message
    assert "connection refused" in message
    assert "cairn server" in message
    assert "\n" not in message
    store.close()


# the metadata port over HTTP


def test_experiments_over_http(metadata: HttpMetadataStore) -> None:
    name = f"exp-{uuid.uuid4().hex[:8]}"
    created = metadata.create_experiment(name)
    assert metadata.get_experiment(created.id) == created
    assert metadata.get_experiment_by_name(name) == created
    assert metadata.get_experiment_by_name("no such experiment") is None
    assert created in metadata.list_experiments()
    with pytest.raises(AlreadyExists):
        metadata.create_experiment(name)
    with pytest.raises(NotFound):
        metadata.get_experiment(MISSING_RUN)


def test_run_lifecycle_over_http(metadata: HttpMetadataStore) -> None:
    run = new_run(metadata, team="core")
    assert run.status is RunStatus.RUNNING
    assert run.tags == {"team": "core"}
    assert metadata.get_run(run.id) == run
    assert metadata.resolve_run_id(run.id[:10]) == run.id
    ended = metadata.end_run(run.id, RunStatus.FINISHED, 2_000)
    assert (ended.status, ended.end_time) == (RunStatus.FINISHED, 2_000)
    assert metadata.set_run_deleted(run.id, True).lifecycle.value == "deleted"
    with pytest.raises(InvalidState):
        metadata.log_batch(run.id, params={"a": "b"})
    assert metadata.set_run_deleted(run.id, False).lifecycle.value == "active"


def test_resolve_errors_over_http(metadata: HttpMetadataStore) -> None:
    with pytest.raises(InvalidInput):
        metadata.resolve_run_id("abc")
    runs = [new_run(metadata) for _ in range(40)]
    prefixes = [r.id[:8] for r in runs]
    shared = next((p for p in prefixes if prefixes.count(p) > 1), None)
    if shared is not None:  # 40 random ids rarely share 8 hex characters
        with pytest.raises(AmbiguousReference):
            metadata.resolve_run_id(shared)


def test_batch_round_trips_nan_and_infinity(metadata: HttpMetadataStore) -> None:
    run = new_run(metadata)
    points = [("loss/train", math.nan, 0, 10), ("loss/train", math.inf, 1, 11)]
    points += [("loss/train", -math.inf, 2, 12), ("acc", 0.5, 0, 10)]
    metadata.log_batch(run.id, points, params={"lr": "0.1"}, tags={"t": "v"}, batch_id="b1")
    history = metadata.get_metric_history(run.id, "loss/train")
    assert math.isnan(history[0].value)
    assert [m.value for m in history[1:]] == [math.inf, -math.inf]
    assert [m.step for m in history] == [0, 1, 2]
    stored = metadata.get_run(run.id)
    assert stored.metrics["loss/train"].value == -math.inf
    assert (stored.params, stored.tags) == ({"lr": "0.1"}, {"t": "v"})


def test_batch_sent_again_with_its_id_is_stored_once(metadata: HttpMetadataStore) -> None:
    run = new_run(metadata)
    points = [("m", float(i), i, i) for i in range(1_000)]
    for _ in range(2):
        metadata.log_batch(run.id, points, batch_id=f"retry-{run.id}")
    assert len(metadata.get_metric_history(run.id, "m")) == 1_000


def test_large_batch_is_ingested(api: httpx.Client, metadata: HttpMetadataStore) -> None:
    run = new_run(metadata)
    points = [(f"k{i % 10}", i * 0.5, i // 10, 1_000 + i) for i in range(50_000)]
    body = {"metrics": batch_to_dict(points)}
    assert api.post(f"/api/v1/runs/{run.id}/batch", json=body).status_code == 204
    assert len(metadata.get_metric_history(run.id, "k3")) == 5_000


def test_search_pages_over_http(metadata: HttpMetadataStore) -> None:
    run = new_run(metadata)
    experiment = run.experiment_id
    for _ in range(4):
        metadata.create_run(NewRun(experiment, "more", 1_000, "tester"))
    order = ["attributes.start_time"]
    first = metadata.search_runs(RunQuery([experiment], limit=3, order_by=order))
    assert len(first.runs) == 3
    assert first.next_page_token is not None
    token = first.next_page_token
    rest = metadata.search_runs(RunQuery([experiment], limit=3, order_by=order, page_token=token))
    assert len(rest.runs) == 2
    assert rest.next_page_token is None
    assert run.id in {r.id for r in first.runs + rest.runs}
    deleted = metadata.search_runs(RunQuery([experiment], view=ViewType.DELETED))
    assert deleted.runs == []


def test_artifact_manifest_over_http(
    metadata: HttpMetadataStore, artifacts: HttpArtifactStore
) -> None:
    run = new_run(metadata)
    digest = artifacts.put_stream(io.BytesIO(b"x")).digest
    entries = [ArtifactEntry("model/weights.bin", digest, 1), ArtifactEntry("a.txt", digest, 1)]
    metadata.add_artifacts(run.id, entries)
    assert [e.path for e in metadata.list_artifacts(run.id)] == ["a.txt", "model/weights.bin"]
    assert [e.path for e in metadata.list_artifacts(run.id, "model")] == ["model/weights.bin"]
    refused = {
        "entries[0].path": ArtifactEntry("../escape", digest, 1),
        "entries[0].size: 2, but object": ArtifactEntry("b.txt", digest, 2),
        "entries[0].digest: object": ArtifactEntry("c.txt", blake3_of(b"never stored"), 1),
    }
    for message, entry in refused.items():
        with pytest.raises(InvalidInput, match=re.escape(message)):
            metadata.add_artifacts(run.id, [entry])
    assert len(metadata.list_artifacts(run.id)) == 2


# the artifact port over HTTP


def test_object_round_trip_of_a_multi_mib_file(
    artifacts: HttpArtifactStore, api: httpx.Client, tmp_path: Path
) -> None:
    data = os.urandom(5 * (1 << 20) + 123)
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    info = artifacts.put_file(source)
    assert (info.digest, info.size) == (blake3_of(data), len(data))
    assert artifacts.missing([info.digest]) == set()
    assert artifacts.sizes([info.digest, blake3_of(b"absent")]) == {info.digest: len(data)}
    assert artifacts.put_file(source) == info  # already there: nothing is uploaded
    artifacts.get_file(info.digest, tmp_path / "out" / "copy.bin")
    assert (tmp_path / "out" / "copy.bin").read_bytes() == data
    with artifacts.open(info.digest) as chunks:
        assert b"".join(chunks) == data
    assert api.head(f"/api/v1/objects/{info.digest}").status_code == 200


def test_put_stream_without_a_digest_answers_it(artifacts: HttpArtifactStore) -> None:
    info = artifacts.put_stream(io.BytesIO(b"hello"))
    assert info.digest == blake3_of(b"hello")
    assert artifacts.put_stream(io.BytesIO(b"hello"), expected_digest=info.digest) == info


def test_wrong_digest_on_put_is_rejected_and_nothing_kept(
    api: httpx.Client, artifacts: HttpArtifactStore, artifacts_dir: Path
) -> None:
    data = os.urandom(3 * (1 << 20))
    claimed = blake3_of(b"something else")
    response = api.put(f"/api/v1/objects/{claimed}", content=data)
    assert response.status_code == 422  # the sender's fault: a retry can succeed
    assert error_of(response)["code"] == "DIGEST_MISMATCH"
    with pytest.raises(DigestMismatch):
        artifacts.put_stream(io.BytesIO(data), expected_digest=claimed)
    assert artifacts.missing([claimed, blake3_of(data)]) == {claimed, blake3_of(data)}
    assert api.head(f"/api/v1/objects/{claimed}").status_code == 404
    assert not any((artifacts_dir / "tmp").iterdir())


def test_missing_object_is_not_found(artifacts: HttpArtifactStore, tmp_path: Path) -> None:
    absent = blake3_of(b"never stored")
    with pytest.raises(NotFound):
        artifacts.get_file(absent, tmp_path / "absent.bin")
    assert not (tmp_path / "absent.bin").exists()
    with pytest.raises(InvalidInput):
        artifacts.missing(["not-a-digest"])


def test_corrupt_object_raises_integrity_error_on_the_client(
    artifacts: HttpArtifactStore, artifacts_dir: Path, tmp_path: Path
) -> None:
    source = tmp_path / "fragile.bin"
    source.write_bytes(b"original bytes")
    info = artifacts.put_file(source)
    (artifacts_dir / "objects" / object_key(info.digest)).write_bytes(b"tampered bytes")
    with pytest.raises(IntegrityError, match="corrupt"):
        artifacts.get_file(info.digest, tmp_path / "copy.bin")
    assert not (tmp_path / "copy.bin").exists()


def test_run_artifact_file_is_downloadable(
    api: httpx.Client, metadata: HttpMetadataStore, artifacts: HttpArtifactStore, tmp_path: Path
) -> None:
    run = new_run(metadata)
    source = tmp_path / "report.html"
    source.write_bytes(b"<h1>report</h1>")
    info = artifacts.put_file(source)
    metadata.add_artifacts(run.id, [ArtifactEntry("reports/report.html", info.digest, info.size)])
    url = f"/api/v1/runs/{run.id}/artifacts/file"
    response = api.get(url, params={"path": "reports/report.html"})
    assert response.status_code == 200
    assert response.content == b"<h1>report</h1>"
    assert response.headers["content-disposition"].startswith("attachment")
    assert error_of(api.get(url, params={"path": "reports"}))["code"] == "NOT_FOUND"

"""The model server: registered models answering the Open Inference Protocol v2 and MLflow's
scoring protocol, every answer naming its version, bad input a 4xx naming the field, a
failing model a 500 that shows nothing of it, and Prometheus metrics of it all."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LinearRegression, LogisticRegression

from cairn import sdk
from cairn.errors import InvalidInput
from cairn.server.model_grpc import start_grpc
from cairn.server.model_server import create_model_app
from cairn.serving.grpc_v2 import inference_pb2 as pb
from cairn.serving.grpc_v2 import inference_pb2_grpc as rpc
from cairn.serving.metrics import ServingMetrics
from cairn.serving.payloads import PayloadLog, read_window
from cairn.serving.served import ServedModel, load_served, zeros
from server_process import free_port, serving

X, Y = load_breast_cancer(return_X_y=True)
TABLE = pd.DataFrame({"age": np.arange(40.0), "spend": np.arange(40.0) % 7})
LABELS = (TABLE["age"] > 20).astype(int)


@pytest.fixture
def served(cairn_home: Path) -> dict[str, ServedModel]:
    models = sdk.session().models
    churn = LogisticRegression(max_iter=5000).fit(X, Y)
    models.register(churn, "churn", input_example=X[:5])
    models.registry.set_alias("churn", "production", 1)
    tabular = LogisticRegression().fit(TABLE, LABELS)
    models.register(tabular, "tabular", input_example=TABLE[:3])
    return load_served(models, ["churn@production", "tabular/1"])


@pytest.fixture
def client(served: dict[str, ServedModel]) -> Iterator[httpx.Client]:
    with serving(create_model_app(served, max_body=200_000)) as found:
        yield found


def _infer(rows: Any, datatype: str = "FP64", shape: list[int] | None = None) -> dict[str, Any]:
    values = np.asarray(rows)
    return {"inputs": [{"name": "input", "shape": shape or list(values.shape),
                        "datatype": datatype, "data": values.ravel().tolist()}]}  # fmt: skip


def test_an_inference_answers_the_predictions_and_names_the_version(client: httpx.Client) -> None:
    expected = LogisticRegression(max_iter=5000).fit(X, Y).predict(X[:4]).tolist()
    answer = client.post("/v2/models/churn/infer", json={**_infer(X[:4]), "id": "q1"},
                         headers={"X-Request-Id": "abc"})  # fmt: skip
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["model_name"], body["model_version"], body["id"]) == ("churn", "1", "q1")
    (output,) = body["outputs"]
    assert (output["shape"], output["datatype"], output["data"]) == ([4], "INT64", expected)
    assert answer.headers["X-Model-Version"] == "churn/1"
    assert answer.headers["X-Request-Id"] == "abc"


def test_a_model_of_columns_takes_each_column_as_a_tensor(client: httpx.Client) -> None:
    body = {"inputs": [
        {"name": "age", "shape": [2], "datatype": "FP64", "data": [3.0, 30.0]},
        {"name": "spend", "shape": [2, 1], "datatype": "FP64", "data": [1, 2]},
    ]}  # fmt: skip
    answer = client.post("/v2/models/tabular/infer", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["outputs"][0]["data"] == [0, 1]


def test_metadata_readiness_and_health(client: httpx.Client) -> None:
    metadata = client.get("/v2/models/churn").json()
    assert metadata["name"] == "churn"
    assert metadata["versions"] == ["1"]
    assert metadata["inputs"] == [{"name": "input", "datatype": "FP64", "shape": [-1, 30]}]
    tabular = client.get("/v2/models/tabular").json()
    assert [i["name"] for i in tabular["inputs"]] == ["age", "spend"]
    assert client.get("/v2/models/churn/ready").json() == {"name": "churn", "ready": True}
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    assert client.get("/v2").json()["name"] == "cairn"
    assert client.get("/ping").status_code == 200
    for path in ("/v2/models/churn/infer", "/invocations", "/models/churn/invocations"):
        refused = client.get(path)
        assert (refused.status_code, refused.headers["allow"]) == (405, "POST")
    assert client.post("/v2/models/churn/nothing").status_code == 404


@pytest.mark.parametrize("payload", [
    {"dataframe_split": {"columns": [f"c{i}" for i in range(30)], "data": X[:3].tolist()}},
    {"dataframe_records": [{f"c{i}": v for i, v in enumerate(row)} for row in X[:3].tolist()]},
    {"instances": X[:3].tolist()},
    {"inputs": X[:3].tolist()},
], ids=["dataframe_split", "dataframe_records", "instances", "inputs"])  # fmt: skip
def test_mlflow_scoring_takes_each_of_its_formats(
    served: dict[str, ServedModel], payload: dict[str, Any]
) -> None:
    only = {"churn": served["churn"]}
    with serving(create_model_app(only)) as client:
        answer = client.post("/invocations", json=payload)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"predictions": served["churn"].predict(X[:3]).tolist()}
    assert answer.headers["X-Model-Version"] == "churn/1"


@pytest.mark.parametrize("payload", [
    {"dataframe_split": {"columns": ["age", "spend"], "data": [[3.0, 1.0], [30.0, 2.0]]}},
    {"dataframe_records": [{"age": 3.0, "spend": 1.0}, {"age": 30.0, "spend": 2.0}]},
    {"instances": [{"age": 3.0, "spend": 1.0}, {"age": 30.0, "spend": 2.0}]},
    {"inputs": {"age": [3.0, 30.0], "spend": [1.0, 2.0]}},
], ids=["dataframe_split", "dataframe_records", "instances", "inputs"])  # fmt: skip
def test_mlflow_scoring_of_a_table(client: httpx.Client, payload: dict[str, Any]) -> None:
    answer = client.post("/models/tabular/invocations", json=payload)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"predictions": [0, 1]}


def test_with_several_models_invocations_names_their_paths(client: httpx.Client) -> None:
    answer = client.post("/invocations", json={"instances": X[:1].tolist()})
    assert answer.status_code == 400
    assert "/models/churn/invocations" in answer.json()["message"]


@pytest.mark.parametrize(("path", "body", "status", "said"), [
    ("/v2/models/churn/infer", _infer(X[:2, :29]), 400, "shape [-1, 29], expected [-1, 30]"),
    ("/v2/models/churn/infer", _infer([["a"] * 30], "BYTES"), 400, "dtype"),
    ("/v2/models/churn/infer", _infer(X[:2], shape=[2, 31]), 400, "inputs[0].data: 60 values"),
    ("/v2/models/churn/infer", {**_infer(X[:1]), "extra": 1}, 400, "extra: unknown field"),
    ("/v2/models/churn/infer", {"inputs": []}, 400, "inputs: expected a list"),
    ("/v2/models/churn/infer", _infer(X[:1], "FP65"), 400, "inputs[0].datatype"),
    ("/v2/models/nothing/infer", _infer(X[:1]), 404, "model 'nothing' is not served"),
    ("/models/tabular/invocations", {"dataframe_split": {"columns": ["age"], "data": [[1.0]]}},
     400, "missing column(s) spend"),
    ("/models/tabular/invocations", {"instances": [1], "inputs": [1]}, 400, "exactly one of"),
    ("/models/churn/invocations", {"instances": [[1, 2], [3]]}, 400, "rows of equal length"),
])  # fmt: skip
def test_bad_input_is_a_4xx_naming_what_was_expected(
    client: httpx.Client, path: str, body: Any, status: int, said: str
) -> None:
    answer = client.post(path, json=body)
    assert answer.status_code == status, answer.text
    found = answer.json()
    message = found["error"] if path.startswith("/v2") else found["message"]
    assert said in message


def test_malformed_json_and_a_body_too_large(client: httpx.Client) -> None:
    for path in ("/v2/models/churn/infer", "/models/churn/invocations"):
        answer = client.post(
            path, content=b"{not json", headers={"content-type": "application/json"}
        )
        assert answer.status_code == 400
        assert "not valid JSON" in answer.text
        big = client.post(path, content=b" " * 200_001)
        assert big.status_code == 413
        assert "--max-body" in big.text


def test_a_request_id_too_long_or_unprintable_is_refused_and_never_logged(
    client: httpx.Client,
) -> None:
    for given in ("x" * 129, "two words"):
        for path in ("/v2/models/churn/infer", "/models/churn/invocations"):
            answer = client.post(path, json=_infer(X[:1]), headers={"X-Request-Id": given})
            assert answer.status_code == 400, answer.text
            assert "X-Request-Id: expected 1 to 128 visible ASCII characters" in answer.text
            assert answer.headers["X-Request-Id"] not in (given, "")  # a new one names it
    kept = client.post("/v2/models/churn/infer", json=_infer(X[:1]),
                       headers={"X-Request-Id": "a" * 128})  # fmt: skip
    assert (kept.status_code, kept.headers["X-Request-Id"]) == (200, "a" * 128)


def test_a_model_that_fails_is_a_500_with_the_request_id_and_no_traceback(
    client: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    nan = {"inputs": [{"name": "input", "shape": [1, 30], "datatype": "FP64",
                       "data": [None] * 30}]}  # fmt: skip
    answer = client.post("/v2/models/churn/infer", json=nan, headers={"X-Request-Id": "r-9"})
    assert answer.status_code == 500
    assert "r-9" in answer.json()["error"]
    assert "Traceback" not in answer.text
    assert "NaN" not in answer.text
    assert "r-9" in caplog.text  # the traceback is in the server's log
    assert client.post("/v2/models/churn/infer", json=_infer(X[:1])).status_code == 200


def test_metrics_count_requests_by_model_version_and_status(client: httpx.Client) -> None:
    client.post("/v2/models/churn/infer", json=_infer(X[:2]))
    client.post("/v2/models/churn/infer", json=_infer(X[:2, :3]))
    text = client.get("/metrics").text
    assert ('cairn_serving_requests_total{model="churn",protocol="oip",status="200",'
            'version="1"} 1.0') in text  # fmt: skip
    assert 'status="400",version="1"} 1.0' in text
    assert 'cairn_serving_request_seconds_bucket{le="0.5",model="churn"' in text
    assert 'cairn_serving_model_version{model="churn",reference="churn@production"} 1.0' in text
    assert 'cairn_serving_model_load_seconds{model="churn",version="1"}' in text
    assert 'cairn_serving_requests_in_flight{model="churn"} 0.0' in text


# Batching: concurrent requests combined, each caller answered with its own rows.


@pytest.fixture
def price(cairn_home: Path) -> dict[str, ServedModel]:
    """A regression: every row's answer is its own, so rows mixed up would show."""
    models = sdk.session().models
    models.register(LinearRegression().fit(X, np.arange(len(X), dtype=float)), "price",
                    input_example=X[:5])  # fmt: skip
    return load_served(models, ["price"])


def _posting(base_url: str, requests: list[tuple[int, Any]]) -> list[httpx.Response]:
    def post(item: tuple[int, Any]) -> httpx.Response:
        with httpx.Client(base_url=base_url, timeout=60) as own:
            return own.post("/v2/models/price/infer", json=item[1])

    with ThreadPoolExecutor(32) as pool:
        return list(pool.map(post, requests))


def test_concurrent_requests_are_batched_and_each_gets_its_own_rows(
    price: dict[str, ServedModel],
) -> None:
    rng = np.random.default_rng(7)
    starts = rng.integers(0, len(X) - 3, 300)
    sizes = rng.integers(1, 4, 300)
    requests = [
        (int(i), _infer(X[s : s + n])) for i, (s, n) in enumerate(zip(starts, sizes, strict=True))
    ]
    bad = {5, 77, 150}  # a wrong shape: refused alone, before joining a batch
    for index in bad:
        requests[index] = (index, _infer(X[:2, :10]))
    expected = price["price"].predict(X)
    app = create_model_app(price, max_batch=32, max_wait_ms=20)
    with serving(app) as client:
        answers = _posting(str(client.base_url), requests)
        metrics = client.get("/metrics").text
    for (index, _), answer, start, size in zip(requests, answers, starts, sizes, strict=True):
        if index in bad:
            assert answer.status_code == 400, answer.text
            continue
        assert answer.status_code == 200, answer.text
        got = answer.json()["outputs"][0]
        assert got["shape"] == [int(size)]
        assert np.allclose(got["data"], expected[start : start + size])
    calls = float(re.search(r'cairn_serving_batch_rows_count\{model="price"\} (\S+)',
                            metrics).group(1))  # type: ignore[union-attr]  # fmt: skip
    assert calls < len(requests) - len(bad)  # some calls answered several requests


def test_a_request_that_makes_the_model_fail_fails_alone_in_its_batch(
    price: dict[str, ServedModel],
) -> None:
    nan = {"inputs": [{"name": "input", "shape": [1, 30], "datatype": "FP64",
                       "data": [None] * 30}]}  # fmt: skip
    requests = [(i, nan if i % 10 == 0 else _infer(X[i : i + 1])) for i in range(100)]
    with serving(create_model_app(price, max_batch=64, max_wait_ms=50)) as client:
        answers = _posting(str(client.base_url), requests)
    expected = price["price"].predict(X)
    for (index, _), answer in zip(requests, answers, strict=True):
        if index % 10 == 0:
            assert answer.status_code == 500
        else:
            assert answer.status_code == 200, answer.text
            assert np.allclose(answer.json()["outputs"][0]["data"], expected[index : index + 1])


# Following the references: a promotion and a rollback switch versions under load.


def test_a_moved_alias_is_switched_to_under_load_without_a_failed_request(
    cairn_home: Path,
) -> None:
    models = sdk.session().models
    for target in (Y, 1 - Y):  # two versions that answer differently
        models.register(LogisticRegression(max_iter=5000).fit(X, target), "churn",
                        input_example=X[:5])  # fmt: skip
    models.registry.set_alias("churn", "production", 1)
    served = load_served(models, ["churn@production"])
    seen: list[tuple[int, str]] = []
    stop = threading.Event()

    def load(base_url: str) -> None:
        with httpx.Client(base_url=base_url, timeout=30) as own:
            while not stop.is_set():
                answer = own.post("/v2/models/churn/infer", json=_infer(X[:3]))
                seen.append((answer.status_code, answer.headers.get("X-Model-Version", "")))

    def until(version: str) -> None:
        deadline, since = time.monotonic() + 20, len(seen)
        while not any(v == version for _, v in seen[since:]):
            assert time.monotonic() < deadline, f"never switched to {version}"
            time.sleep(0.05)

    app = create_model_app(served, max_batch=8, follow_seconds=0.2)
    with serving(app) as client, ThreadPoolExecutor(4) as pool:
        running = [pool.submit(load, str(client.base_url)) for _ in range(4)]
        until("churn/1")
        models.registry.set_alias("churn", "production", 2)  # what a promotion does
        until("churn/2")
        models.registry.set_alias("churn", "production", 1)  # and a rollback
        until("churn/1")
        stop.set()
        for future in running:
            future.result()
        metrics = client.get("/metrics").text
    assert {status for status, _ in seen} == {200}
    versions = [v for _, v in seen]
    first_two = versions.index("churn/2")
    assert "churn/1" in versions[:first_two]
    assert "churn/1" in versions[first_two:]
    assert 'cairn_serving_model_version{model="churn",reference="churn@production"} 1.0' in metrics


# Traffic: a canary's share, sticky by key; a shadow's answers compared, never returned.


@pytest.fixture
def two_versions(cairn_home: Path) -> Any:
    models = sdk.session().models
    for target in (Y, 1 - Y):
        models.register(LogisticRegression(max_iter=5000).fit(X, target), "churn",
                        input_example=X[:5])  # fmt: skip
    models.registry.set_alias("churn", "production", 1)
    return models


def test_a_canary_takes_its_share_the_same_requests_every_time(two_versions: Any) -> None:
    served = load_served(two_versions, ["churn@production"], canaries=["churn/2=20%"])
    requests = 2000
    with serving(create_model_app(served, max_batch=1)) as client:
        versions = [
            client.post("/v2/models/churn/infer", json=_infer(X[:1]),
                        headers={"X-Request-Id": f"user-{i}"}).headers["X-Model-Version"]
            for i in range(requests)
        ]  # fmt: skip
        again = [
            client.post("/v2/models/churn/infer", json=_infer(X[:1]),
                        headers={"X-Request-Id": f"user-{i}"}).headers["X-Model-Version"]
            for i in range(200)
        ]  # fmt: skip
        metrics = client.get("/metrics").text
    canary = versions.count("churn/2")
    # Binomial(2000, 0.2): mean 400, standard deviation about 17.9; 4 of them either side.
    assert abs(canary - 400) < 4 * (requests * 0.2 * 0.8) ** 0.5, canary
    assert again == versions[:200]  # sticky: one key, one version
    on_two = canary + again.count("churn/2")
    assert f'status="200",version="2"}} {float(on_two)}' in metrics  # each counted by version
    assert f'status="200",version="1"}} {float(requests + 200 - on_two)}' in metrics


def test_a_shadow_answers_are_counted_never_returned(two_versions: Any) -> None:
    served = load_served(two_versions, ["churn@production"], shadows=["churn/2"])
    primary = served["churn"].predict(X[:4]).tolist()
    with serving(create_model_app(served, max_batch=1)) as client:
        for _ in range(20):
            answer = client.post("/models/churn/invocations", json={"instances": X[:4].tolist()})
            assert answer.json() == {"predictions": primary}
            assert answer.headers["X-Model-Version"] == "churn/1"
        deadline = time.monotonic() + 10
        while 'outcome="different",version="2"} 20.0' not in client.get("/metrics").text:
            assert time.monotonic() < deadline, client.get("/metrics").text
            time.sleep(0.05)


def test_a_version_is_warmed_on_a_row_of_zeros_of_its_signature(
    served: dict[str, ServedModel],
) -> None:
    assert zeros(served["churn"].inputs).shape == (1, 30)  # type: ignore[arg-type]
    table = zeros(served["tabular"].inputs)  # type: ignore[arg-type]
    assert list(table.columns) == ["age", "spend"]
    assert len(table) == 1
    for model in served.values():
        model.warm()  # answers, or is left cold, never raises


def test_a_canary_or_shadow_of_a_model_not_served_is_refused(two_versions: Any) -> None:
    with pytest.raises(InvalidInput, match="--canary fraud/1: model 'fraud' is not served"):
        load_served(two_versions, ["churn@production"], canaries=["fraud/1=5%"])
    with pytest.raises(InvalidInput, match="expected a version and its share"):
        load_served(two_versions, ["churn@production"], canaries=["churn/2=150%"])


# Payload logging: answered requests written in batches, read back as a window.


def test_answered_requests_are_logged_and_read_back_as_a_window(
    served: dict[str, ServedModel],
) -> None:
    session = sdk.session()
    log = PayloadLog(session.registry, session.artifacts, flush_seconds=0.2)
    started = int(time.time() * 1000)
    app = create_model_app(served, payloads=log)
    with serving(app) as client:
        for index in range(5):
            client.post("/v2/models/churn/infer", json=_infer(X[index:index + 2]),
                        headers={"X-Request-Id": f"oip-{index}"})  # fmt: skip
        client.post("/models/tabular/invocations", json={"inputs": {"age": [3.0], "spend": [1.0]}},
                    headers={"X-Request-Id": "mlflow-1"})  # fmt: skip
        client.post("/v2/models/churn/infer", json=_infer(X[:1, :3]))  # refused: not logged
    # Stopping the server closes the log: what it gathered is written.
    window = list(read_window(session.registry, session.artifacts, "churn", started))
    assert [row["request_id"] for row in window] == [f"oip-{i}" for i in range(5)]
    first = window[0]
    assert first["version"] == 1
    assert np.allclose(first["inputs"], X[0:2])
    assert first["outputs"] == served["churn"].predict(X[0:2]).tolist()
    (tabular,) = read_window(session.registry, session.artifacts, "tabular", started)
    assert (tabular["request_id"], tabular["outputs"]) == ("mlflow-1", [0])
    assert tabular["inputs"] == [{"age": 3.0, "spend": 1.0}]
    assert list(read_window(session.registry, session.artifacts, "churn", 0, started - 1)) == []


def test_when_the_log_cannot_keep_up_it_drops_and_counts_never_waits(
    served: dict[str, ServedModel],
) -> None:
    class Stuck:
        """A registry whose index never answers: the log's writer waits on it."""

        def __init__(self) -> None:
            self.release = threading.Event()

        def log_traffic(self, batch: Any) -> Any:
            self.release.wait(30)
            return batch

    stuck, counts = Stuck(), {"dropped": 0, "logged": 0}

    def counted(model: str, outcome: str, count: int) -> None:
        counts[outcome] += count

    log = PayloadLog(stuck, sdk.session().artifacts, flush_rows=1, capacity=3,  # type: ignore[arg-type]
                     counted=counted)  # fmt: skip
    started = time.perf_counter()
    for index in range(50):
        log.record("churn", 1, f"r{index}", X[:1], [1])
    assert time.perf_counter() - started < 0.5  # never waited for the writer
    assert counts["dropped"] >= 40
    stuck.release.set()
    log.close()
    assert counts["logged"] + counts["dropped"] == 50


# The Open Inference Protocol's gRPC service.


@pytest.fixture
def grpc_stub(served: dict[str, ServedModel]) -> Iterator[Any]:
    port = free_port()
    server = start_grpc(served, "127.0.0.1", port, ServingMetrics())
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    yield rpc.GRPCInferenceServiceStub(channel)
    channel.close()
    server.stop(1)


def _tensor(rows: Any, raw: bool = False) -> Any:
    values = np.asarray(rows, dtype="float64")
    tensor = pb.ModelInferRequest.InferInputTensor(name="input", datatype="FP64",
                                                   shape=list(values.shape))  # fmt: skip
    if not raw:
        tensor.contents.fp64_contents.extend(values.ravel().tolist())
    return tensor, values.astype("<f8").tobytes()


def test_grpc_answers_health_metadata_and_inference(
    grpc_stub: Any, served: dict[str, ServedModel]
) -> None:
    assert grpc_stub.ServerLive(pb.ServerLiveRequest()).live
    assert grpc_stub.ServerReady(pb.ServerReadyRequest()).ready
    assert grpc_stub.ModelReady(pb.ModelReadyRequest(name="churn")).ready
    server = grpc_stub.ServerMetadata(pb.ServerMetadataRequest())
    assert (server.name, list(server.extensions)) == ("cairn", [])
    meta = grpc_stub.ModelMetadata(pb.ModelMetadataRequest(name="churn"))
    assert (meta.name, list(meta.versions), meta.inputs[0].datatype) == ("churn", ["1"], "FP64")
    assert list(meta.inputs[0].shape) == [-1, 30]
    expected = served["churn"].predict(X[:3]).tolist()
    tensor, _ = _tensor(X[:3])
    answer, call = grpc_stub.ModelInfer.with_call(
        pb.ModelInferRequest(model_name="churn", id="g1", inputs=[tensor])
    )
    assert (answer.model_name, answer.model_version, answer.id) == ("churn", "1", "g1")
    assert list(answer.outputs[0].contents.int64_contents) == expected
    assert list(answer.outputs[0].shape) == [3]
    assert ("x-model-version", "churn/1") in call.initial_metadata()
    raw_tensor, raw = _tensor(X[:3], raw=True)
    raw_answer = grpc_stub.ModelInfer(
        pb.ModelInferRequest(model_name="churn", inputs=[raw_tensor], raw_input_contents=[raw])
    )
    assert list(raw_answer.outputs[0].contents.int64_contents) == expected


def test_grpc_refuses_bad_input_and_unknown_models_with_their_status(grpc_stub: Any) -> None:
    tensor, _ = _tensor(X[:2, :29])
    with pytest.raises(grpc.RpcError) as refused:
        grpc_stub.ModelInfer(pb.ModelInferRequest(model_name="churn", inputs=[tensor]))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "shape [-1, 29], expected [-1, 30]" in refused.value.details()
    with pytest.raises(grpc.RpcError) as unknown:
        grpc_stub.ModelReady(pb.ModelReadyRequest(name="nothing"))
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
    short, _ = _tensor(X[:1])
    with pytest.raises(grpc.RpcError) as raw:
        grpc_stub.ModelInfer(pb.ModelInferRequest(model_name="churn", inputs=[short],
                                                  raw_input_contents=[bytes(7)]))  # fmt: skip
    assert raw.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    nan = pb.ModelInferRequest.InferInputTensor(name="input", datatype="FP64", shape=[1, 30])
    nan.contents.fp64_contents.extend([float("nan")] * 30)
    with pytest.raises(grpc.RpcError) as failed:
        grpc_stub.ModelInfer(pb.ModelInferRequest(model_name="churn", id="bad-1", inputs=[nan]))
    assert failed.value.code() == grpc.StatusCode.INTERNAL
    assert "bad-1" in failed.value.details()
    assert "NaN" not in failed.value.details()
    with pytest.raises(grpc.RpcError) as long_id:
        grpc_stub.ModelInfer(pb.ModelInferRequest(model_name="churn", id="i" * 129,
                                                  inputs=[short]))  # fmt: skip
    assert long_id.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "id: expected 1 to 128 visible ASCII" in long_id.value.details()

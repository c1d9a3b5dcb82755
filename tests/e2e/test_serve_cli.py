"""``cairn serve`` as a user runs it: a process serving a released model over HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import grpc
import httpx
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

from cairn import sdk
from cairn.serving.grpc_v2 import inference_pb2 as pb
from cairn.serving.grpc_v2 import inference_pb2_grpc as rpc
from cairn.serving.payloads import read_window
from server_process import free_port

X, Y = load_breast_cancer(return_X_y=True)


def _released(versions: int) -> Any:
    models = sdk.session().models
    for target in (Y, 1 - Y)[:versions]:
        models.register(LogisticRegression(max_iter=5000).fit(X, target), "churn",
                        input_example=X[:5])  # fmt: skip
    models.registry.set_alias("churn", "production", 1)
    sdk.session().close()  # the server process opens the store itself
    return models


def _serving(*options: str) -> tuple[subprocess.Popen[bytes], str]:
    """``cairn serve churn@production`` with ``options``, once it answers ready."""
    port = free_port()
    command = [sys.executable, "-m", "cairn", "serve", "churn@production", "--port", str(port),
               *options]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    while True:
        try:
            if httpx.get(f"{base}/v2/health/ready").status_code == 200:
                return process, base
        except httpx.TransportError:
            pass
        assert process.poll() is None, process.communicate()[1].decode()
        assert time.monotonic() - started < 60, "the server did not become ready"
        time.sleep(0.05)


def test_cairn_serve_answers_for_a_released_model(cairn_home: Path) -> None:
    models = _released(2)
    grpc_port = free_port()
    started_ms = int(time.time() * 1000)
    process, base = _serving("--canary", "churn/2=30%", "--grpc-port", str(grpc_port))
    try:
        versions = []
        for index in range(60):
            answer = httpx.post(f"{base}/invocations", json={"instances": X[:2].tolist()},
                                headers={"X-Request-Id": f"r{index}"})  # fmt: skip
            assert answer.status_code == 200, answer.text
            version = answer.headers["X-Model-Version"]
            expected = models.load(version).predict(X[:2]).tolist()
            assert answer.json() == {"predictions": expected}
            versions.append(version)
        assert {"churn/1", "churn/2"} == set(versions)  # the canary took its share
        channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
        assert rpc.GRPCInferenceServiceStub(channel).ServerLive(pb.ServerLiveRequest()).live
        channel.close()
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=15)
    assert b"serving: churn (churn/1), canary churn/2 at 30%" in err
    assert b"Traceback" not in err
    session = sdk.session()  # what was answered was logged, and written as the server stopped
    logged = list(read_window(session.registry, session.artifacts, "churn", started_ms))
    assert sorted(row["request_id"] for row in logged) == sorted(f"r{i}" for i in range(60))


def test_several_workers_answer_count_together_and_a_dead_one_is_replaced(
    cairn_home: Path,
) -> None:
    models = _released(1)
    expected = models.load("churn/1").predict(X[:3]).tolist()
    process, base = _serving("--workers", "2", "--log-sample", "0")
    try:
        answering = _workers(process.pid)
        assert len(answering) == 2
        with httpx.Client() as client:
            for _ in range(40):
                answer = client.post(f"{base}/invocations", json={"instances": X[:3].tolist()})
                assert answer.json() == {"predictions": expected}
            os.kill(answering[0], signal.SIGKILL)  # the other answers; the dead is replaced
        for _ in range(40):  # a connection each: the killed worker's own is gone with it
            assert httpx.post(f"{base}/invocations",
                              json={"instances": X[:3].tolist()}).status_code == 200  # fmt: skip
        # The supervisor looks every half second, pinging each worker in turn (a busy one
        # answers late): the dead one is replaced within a few seconds.
        deadline = time.monotonic() + 15
        while answering[0] in _workers(process.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert answering[0] not in _workers(process.pid)
        assert len(_workers(process.pid)) == 2
        metrics = httpx.get(f"{base}/metrics").text
        # Each worker counts in files the scrape reads together, whichever worker answers
        # it: what the killed worker answered is still counted.
        assert ('cairn_serving_requests_total{model="churn",protocol="mlflow",status="200",'
                'version="1"} 80.0') in metrics  # fmt: skip
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=20)
    assert b"2 workers" in err
    assert b"Traceback" not in err


def _workers(pid: int) -> list[int]:
    """The server's worker processes (not multiprocessing's resource tracker)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in children
            if b"resource_tracker" not in Path(f"/proc/{child}/cmdline").read_bytes()]  # fmt: skip


def test_cairn_serve_refuses_a_model_there_is_none_of(cairn_home: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "cairn", "serve", "nothing@production"],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode != 0
    assert "nothing" in done.stderr
    assert "Traceback" not in done.stderr

"""``cairn serve`` as a user runs it: a process serving a released model over HTTP."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import httpx
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

from cairn import sdk
from cairn.serving.grpc_v2 import inference_pb2 as pb
from cairn.serving.grpc_v2 import inference_pb2_grpc as rpc
from cairn.serving.payloads import read_window
from server_process import free_port


def test_cairn_serve_answers_for_a_released_model(cairn_home: Path) -> None:
    x, y = load_breast_cancer(return_X_y=True)
    models = sdk.session().models
    for target in (y, 1 - y):
        models.register(LogisticRegression(max_iter=5000).fit(x, target), "churn",
                        input_example=x[:5])  # fmt: skip
    models.registry.set_alias("churn", "production", 1)
    sdk.session().close()  # the server process opens the store itself
    port, grpc_port = free_port(), free_port()
    started_ms = int(time.time() * 1000)
    command = [sys.executable, "-m", "cairn", "serve", "churn@production", "--port", str(port),
               "--canary", "churn/2=30%", "--grpc-port", str(grpc_port)]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        started = time.monotonic()
        while True:
            try:
                if httpx.get(f"{base}/v2/health/ready").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, process.communicate()[1].decode()
            assert time.monotonic() - started < 30, "the server did not become ready"
            time.sleep(0.05)
        versions = []
        for index in range(60):
            answer = httpx.post(f"{base}/invocations", json={"instances": x[:2].tolist()},
                                headers={"X-Request-Id": f"r{index}"})  # fmt: skip
            assert answer.status_code == 200, answer.text
            version = answer.headers["X-Model-Version"]
            expected = models.load(version).predict(x[:2]).tolist()
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


def test_cairn_serve_refuses_a_model_there_is_none_of(cairn_home: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "cairn", "serve", "nothing@production"],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode != 0
    assert "nothing" in done.stderr
    assert "Traceback" not in done.stderr

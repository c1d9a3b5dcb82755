"""``cairn serve`` as a user runs it: a process serving a released model over HTTP."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

from cairn import sdk
from server_process import free_port


def test_cairn_serve_answers_for_a_released_model(cairn_home: Path) -> None:
    x, y = load_breast_cancer(return_X_y=True)
    models = sdk.session().models
    models.register(LogisticRegression(max_iter=5000).fit(x, y), "churn", input_example=x[:5])
    models.registry.set_alias("churn", "production", 1)
    sdk.session().close()  # the server process opens the store itself
    port = free_port()
    command = [sys.executable, "-m", "cairn", "serve", "churn@production", "--port", str(port)]
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
        answer = httpx.post(f"{base}/invocations", json={"instances": x[:2].tolist()})
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"predictions": models.load("churn/1").predict(x[:2]).tolist()}
        assert answer.headers["X-Model-Version"] == "churn/1"
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=15)
    assert b"serving: churn (churn/1)" in err
    assert b"Traceback" not in err


def test_cairn_serve_refuses_a_model_there_is_none_of(cairn_home: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "cairn", "serve", "nothing@production"],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode != 0
    assert "nothing" in done.stderr
    assert "Traceback" not in done.stderr

"""``cairn deploy --target kubernetes``: a Dockerfile and manifests that Kubernetes' own API
schema accepts, serving the version an environment runs, following it, probed on the OIP
health endpoints."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import kubernetes_validate
import pytest
import yaml
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

from cairn import sdk
from server_process import free_port


@pytest.fixture
def released(cairn_home: Path) -> None:
    x, y = load_breast_cancer(return_X_y=True)
    models = sdk.session().models
    models.register(LogisticRegression(max_iter=5000).fit(x, y), "churn", input_example=x[:5])
    models.registry.set_alias("churn", "production", 1)
    sdk.session().close()


def _deploy(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cairn", "deploy", *args],
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def test_the_manifests_validate_against_the_kubernetes_api(released: None, tmp_path: Path) -> None:
    out = tmp_path / "deploy"
    done = _deploy("production", "--model", "churn", "--target", "kubernetes", "--out", str(out),
                   "--cairn-uri", "https://cairn.example.com", "--replicas", "3")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "churn@production runs churn/1 now" in done.stdout
    documents = list(yaml.safe_load_all((out / "kubernetes.yaml").read_text()))
    kinds = [d["kind"] for d in documents]
    assert kinds == ["ConfigMap", "Deployment", "Service", "HorizontalPodAutoscaler",
                     "PodDisruptionBudget"]  # fmt: skip
    version = kubernetes_validate.latest_version()
    for document in documents:
        kubernetes_validate.validate(document, version, strict=True)  # raises on any error
    by_kind = {d["kind"]: d for d in documents}
    assert by_kind["ConfigMap"]["data"]["CAIRN_MODEL"] == "churn@production"
    assert by_kind["ConfigMap"]["data"]["CAIRN_URI"] == "https://cairn.example.com"
    pod = by_kind["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert set(container["resources"]) == {"requests", "limits"}
    assert container["env"][0]["valueFrom"]["secretKeyRef"] == {"name": "cairn-token",
                                                                 "key": "token"}  # fmt: skip
    assert by_kind["HorizontalPodAutoscaler"]["spec"]["minReplicas"] == 3
    dockerfile = (out / "Dockerfile").read_text()
    assert dockerfile.startswith("# The model server for churn@production")
    assert "FROM python:3." in dockerfile
    assert "-slim" in dockerfile
    assert "-r requirements.txt" in dockerfile
    assert "scikit-learn==" in (out / "requirements.txt").read_text()


def test_deploying_needs_a_server_the_pods_can_reach(released: None, tmp_path: Path) -> None:
    done = _deploy("production", "--model", "churn", "--target", "kubernetes",
                   "--out", str(tmp_path / "d"))  # fmt: skip
    assert done.returncode != 0
    assert "--cairn-uri" in done.stderr
    assert "Traceback" not in done.stderr
    missing = _deploy("nowhere", "--model", "churn", "--target", "kubernetes",
                      "--cairn-uri", "http://c:5000")  # fmt: skip
    assert missing.returncode != 0
    assert "Traceback" not in missing.stderr


def test_a_local_deployment_is_restarted_when_its_server_dies(released: None) -> None:
    port = free_port()
    done = _deploy("production", "--model", "churn", "--target", "local", "--port", str(port))
    assert done.returncode == 0, done.stderr
    assert "as churn-production" in done.stdout
    try:
        first = _ready(port)
        os.kill(first, signal.SIGKILL)  # the server dies; its supervisor starts it again
        deadline = time.monotonic() + 60
        while (again := _status()[0])["server_pid"] in (first, None) or not _answers(port):
            assert time.monotonic() < deadline, _deploy("logs", "churn-production").stdout
            time.sleep(0.2)
        assert again["restarts"] >= 1
        assert again["running"]
        answer = httpx.post(f"http://127.0.0.1:{port}/invocations",
                            json={"instances": [[0.0] * 30]})  # fmt: skip
        assert answer.headers["X-Model-Version"] == "churn/1"
        assert "cairn deploy: the server exited" in _deploy("logs", "churn-production").stdout
    finally:
        stopped = _deploy("stop", "churn-production")
    assert stopped.returncode == 0, stopped.stderr
    assert _status()[0]["running"] is False
    assert not _answers(port)


def _status() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = json.loads(_deploy("status", "--json").stdout)
    return found


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/v2/health/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _ready(port: int) -> int:
    """The server's pid, once it answers."""
    deadline = time.monotonic() + 60
    while not _answers(port):
        assert time.monotonic() < deadline, _deploy("logs", "churn-production").stdout
        time.sleep(0.2)
    pid = _status()[0]["server_pid"]
    assert isinstance(pid, int)
    return pid

"""``cairn deploy --target kubernetes``: a Dockerfile and manifests that Kubernetes' own API
schema accepts, serving the version an environment runs, following it, probed on the OIP
health endpoints."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

from cairn import sdk


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
    done = _deploy("production", "--model", "churn", "--out", str(tmp_path / "d"))
    assert done.returncode != 0
    assert "--cairn-uri" in done.stderr
    assert "Traceback" not in done.stderr
    missing = _deploy("nowhere", "--model", "churn", "--cairn-uri", "http://c:5000")
    assert missing.returncode != 0
    assert "Traceback" not in missing.stderr

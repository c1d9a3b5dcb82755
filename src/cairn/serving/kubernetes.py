"""What Kubernetes needs to serve a model an environment runs, as ``cairn serve`` does on
one machine: a Dockerfile (a slim Python image with Cairn and the model's recorded
requirements) and manifests — a ConfigMap (the model's reference, the Cairn server it is
read from, the server's settings), a Deployment (liveness and readiness probes on the OIP
v2 health endpoints, resource requests and limits, the token from a Secret), a Service, a
HorizontalPodAutoscaler and a PodDisruptionBudget.

A pod reads its model from a Cairn server (``CAIRN_URI``) with a token kept in a Secret the
operator makes (``kubectl create secret generic NAME --from-literal=token=…``), and follows
the environment: a promotion or a rollback there is switched to by every pod within
``follow`` seconds, with no new image and no restart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from cairn._version import __version__
from cairn.core.model import ModelVersion
from cairn.errors import InvalidInput

PORT = 8080
_DNS_LABEL = re.compile(r"[^a-z0-9-]+")


@dataclass(frozen=True)
class Deployment:
    """What to deploy and how (the defaults suit a small model)."""

    environment: str
    version: ModelVersion  # the version the environment runs now (its requirements)
    cairn_uri: str
    image: str | None = None  # default: cairn-serve-<model>:<environment>
    token_secret: str = "cairn-token"  # noqa: S105  # the name of a Secret with the key ``token``
    replicas: int = 2
    max_replicas: int = 10
    cpu_request: str = "250m"
    memory_request: str = "512Mi"
    cpu_limit: str = "1"
    memory_limit: str = "1Gi"
    max_batch: int = 64
    follow_seconds: float = 5.0

    @property
    def name(self) -> str:
        """The objects' name: the model and the environment, as a DNS label."""
        found = _DNS_LABEL.sub("-", f"{self.version.name}-{self.environment}".lower()).strip("-")
        return found[:63].rstrip("-") or "cairn-model"

    @property
    def reference(self) -> str:
        return f"{self.version.name}@{self.environment}"

    @property
    def image_name(self) -> str:
        return self.image or f"cairn-serve-{self.name}:latest"


def write(deployment: Deployment, out: Path) -> list[Path]:
    """Write the Dockerfile, the requirements and the manifests into ``out``.

    Returns:
        The files written.
    Raises:
        InvalidInput: ``cairn_uri`` is no http(s) URL (a pod reads its model from there).
    """
    if not deployment.cairn_uri.startswith(("http://", "https://")):
        raise InvalidInput(f"--cairn-uri {deployment.cairn_uri!r}: expected the http(s) URL "
                           "of the Cairn server the pods read the model from")  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in (("Dockerfile", dockerfile(deployment)),
                       ("requirements.txt", requirements(deployment.version)),
                       ("kubernetes.yaml", yaml.safe_dump_all(manifests(deployment),
                                                              sort_keys=False))):  # fmt: skip
        path = out / name
        path.write_text(text)
        written.append(path)
    return written


def requirements(version: ModelVersion) -> str:
    """The model's pinned requirements, as its package recorded them."""
    found = [str(r) for r in version.manifest.get("requirements", [])]
    return "".join(f"{line}\n" for line in found)


def dockerfile(deployment: Deployment) -> str:
    python = ".".join(str(deployment.version.manifest.get("python", "3.11")).split(".")[:2])
    return f"""\
# The model server for {deployment.reference}: Cairn and the model's recorded requirements.
FROM python:{python}-slim
WORKDIR /srv
COPY requirements.txt .
RUN pip install --no-cache-dir "cairn-mlops[serving]=={__version__}" -r requirements.txt
ENV CAIRN_HOME=/tmp/cairn PYTHONUNBUFFERED=1
USER 65532:65532
EXPOSE {PORT}
CMD ["cairn", "serve", "{deployment.reference}", "--host", "0.0.0.0", "--port", "{PORT}"]
"""


def manifests(deployment: Deployment) -> list[dict[str, Any]]:
    """The ConfigMap, Deployment, Service, HorizontalPodAutoscaler and PodDisruptionBudget."""
    name = deployment.name
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "cairn",
              "cairn.dev/model": deployment.version.name,
              "cairn.dev/environment": deployment.environment}  # fmt: skip
    selector = {"app.kubernetes.io/name": name}
    meta = {"name": name, "labels": labels}
    config = {
        "CAIRN_URI": deployment.cairn_uri,
        "CAIRN_MODEL": deployment.reference,
        "CAIRN_MAX_BATCH": str(deployment.max_batch),
        "CAIRN_FOLLOW_SECONDS": str(deployment.follow_seconds),
    }
    return [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": config},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta,
         "spec": {"replicas": deployment.replicas, "selector": {"matchLabels": selector},
                  "template": {"metadata": {"labels": labels},
                               "spec": _pod(deployment, name)}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": meta,
         "spec": {"selector": selector, "ports": [
             {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]}},
        {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": meta,
         "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                     "name": name},
                  "minReplicas": deployment.replicas, "maxReplicas": deployment.max_replicas,
                  "metrics": [{"type": "Resource", "resource": {
                      "name": "cpu", "target": {"type": "Utilization",
                                                "averageUtilization": 70}}}]}},
        {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": meta,
         "spec": {"minAvailable": 1, "selector": {"matchLabels": selector}}},
    ]  # fmt: skip


def _pod(deployment: Deployment, name: str) -> dict[str, Any]:
    def probe(path: str, period: int) -> dict[str, Any]:
        return {"httpGet": {"path": path, "port": "http"}, "periodSeconds": period,
                "timeoutSeconds": 2, "failureThreshold": 3}  # fmt: skip

    return {
        "securityContext": {"runAsNonRoot": True, "runAsUser": 65532},
        "containers": [{
            "name": "model-server",
            "image": deployment.image_name,
            "args": ["cairn", "serve", "$(CAIRN_MODEL)", "--host", "0.0.0.0",  # noqa: S104  # a pod's
                     "--port", str(PORT), "--max-batch", "$(CAIRN_MAX_BATCH)",
                     "--follow", "$(CAIRN_FOLLOW_SECONDS)"],
            "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
            "envFrom": [{"configMapRef": {"name": name}}],
            "env": [{"name": "CAIRN_TOKEN", "valueFrom": {"secretKeyRef": {
                "name": deployment.token_secret, "key": "token"}}}],
            "resources": {
                "requests": {"cpu": deployment.cpu_request, "memory": deployment.memory_request},
                "limits": {"cpu": deployment.cpu_limit, "memory": deployment.memory_limit},
            },
            "startupProbe": {**probe("/v2/health/ready", 2), "failureThreshold": 60},
            "livenessProbe": probe("/v2/health/live", 10),
            "readinessProbe": probe("/v2/health/ready", 5),
        }],
    }  # fmt: skip

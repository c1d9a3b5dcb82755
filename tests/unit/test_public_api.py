"""The public SDK is exactly what ``cairn.__all__`` and its namespaces list; every name loads."""

from __future__ import annotations

import subprocess
import sys

import cairn

# The documented SDK: a name added or removed here is a change to the public API.
PUBLIC = [
    "ActiveRun", "CairnError", "Experiment", "Metric", "Run", "RunList", "RunStatus",
    "__version__", "configure", "data", "delete_run", "get_metric_history", "get_run",
    "list_experiments", "models", "monitoring", "pipeline", "releases", "restore_run",
    "search_runs", "start_run", "step",
]  # fmt: skip
NAMESPACES = {
    "data": ["get"],
    "models": [
        "LoadedModel", "ModelCard", "ModelVersion", "RegisteredModel", "delete_alias",
        "get_card", "get_version", "list_models", "list_versions", "load", "set_alias",
        "set_card",
    ],
    "monitoring": ["create", "log_labels", "report", "run"],
    "releases": [
        "Deployment", "Environment", "GateCheck", "PromotionRequest", "RequestState",
        "Webhook", "approve", "check", "create_environment", "deployed", "environment",
        "environments", "history", "promote", "reject", "request", "requests", "rollback",
        "set_policy",
    ],
}  # fmt: skip


def test_all_is_exactly_the_documented_api_and_every_name_resolves() -> None:
    assert cairn.__all__ == PUBLIC
    for name in cairn.__all__:
        assert getattr(cairn, name) is not None


def test_each_namespace_offers_exactly_its_documented_names() -> None:
    for namespace, names in NAMESPACES.items():
        module = getattr(cairn, namespace)
        assert module.__all__ == names
        for name in names:
            assert getattr(module, name) is not None


def _heavy_modules_loaded_by(statement: str) -> str:
    heavy = "('sqlalchemy', 'httpx', 'fastapi', 'fsspec', 'uvicorn')"
    code = f"import sys; {statement}; print(' '.join(m for m in {heavy} if m in sys.modules))"
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return loaded.stdout.strip()


def test_import_cairn_loads_no_storage_or_web_stack() -> None:
    """``import cairn`` stays light: the CLI and scripts start fast."""
    assert _heavy_modules_loaded_by("import cairn") == ""


def test_the_cli_starts_without_the_storage_or_web_stack() -> None:
    """Every ``cairn`` command pays for what the CLI imports before it runs."""
    assert _heavy_modules_loaded_by("import cairn.cli.main") == ""

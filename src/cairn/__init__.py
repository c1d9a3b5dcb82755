"""Cairn: the release process for machine learning.

    import cairn

    with cairn.start_run(experiment="churn") as run:
        run.log_params({"lr": 0.1})
        run.log_metric("loss", 0.3, step=1)

The names below are loaded on first use, so ``import cairn`` (and the CLI) start fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from cairn._version import __version__

if TYPE_CHECKING:
    from cairn import data, models, monitoring, releases
    from cairn.core.run import Experiment, Metric, Run, RunStatus
    from cairn.errors import CairnError
    from cairn.sdk import (
        RunList,
        configure,
        delete_run,
        get_metric_history,
        get_run,
        list_experiments,
        pipeline,
        restore_run,
        search_runs,
        start_run,
        step,
    )
    from cairn.tracking.run import ActiveRun

__all__ = [
    "ActiveRun",
    "CairnError",
    "Experiment",
    "Metric",
    "Run",
    "RunList",
    "RunStatus",
    "__version__",
    "configure",
    "data",
    "delete_run",
    "get_metric_history",
    "get_run",
    "list_experiments",
    "models",
    "monitoring",
    "pipeline",
    "releases",
    "restore_run",
    "search_runs",
    "start_run",
    "step",
]

_HOMES = {
    "ActiveRun": "cairn.tracking.run",
    "CairnError": "cairn.errors",
    "Experiment": "cairn.core.run",
    "Metric": "cairn.core.run",
    "Run": "cairn.core.run",
    "RunStatus": "cairn.core.run",
}


# Namespaces: ``cairn.data.get(…)``, ``cairn.models.load(…)``, ``cairn.releases.promote(…)``,
# ``cairn.monitoring.log_labels(…)``.
_MODULES = {"data": "cairn.data", "models": "cairn.models", "releases": "cairn.releases",
            "monitoring": "cairn.monitoring"}  # fmt: skip


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return importlib.import_module(_MODULES[name])
    if name in __all__:
        value = getattr(importlib.import_module(_HOMES.get(name, "cairn.sdk")), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'cairn' has no attribute {name!r}")

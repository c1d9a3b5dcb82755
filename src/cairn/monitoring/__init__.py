"""Monitoring: a model's inputs and answers once it serves, against what it was trained
on — drift, data quality and, once labels come, performance.

    import cairn

    cairn.monitoring.create("churn-prod", "churn@production", training_frame, window_seconds=3600)
    cairn.monitoring.run("churn-prod")                     # the last hour of logged traffic
    cairn.monitoring.log_labels("churn", request_ids, labels)   # as they come in
    cairn.monitoring.report("churn-prod")["performance"]

The same as ``cairn monitor …`` on the command line; see ``docs/monitoring.md``. The
modules of this package are the statistics (``reference``, ``drift``, ``quality``,
``performance``), a window's evaluation and report, the service, the schedule and the
closed loop (``retrain``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cairn.core.monitor import Monitor, MonitorResult
    from cairn.monitoring.service import MonitorService

__all__ = ["create", "log_labels", "report", "run"]


def _service() -> MonitorService:
    from cairn.sdk import session  # this namespace fronts the SDK's session

    return session().monitoring


def create(name: str, model: str, reference: Any, **options: Any) -> Monitor:
    """A monitor of ``model`` whose windows are compared with ``reference`` (the training
    data); ``options`` as ``MonitorService.create`` takes them."""
    return _service().create(name, model, reference, **options)


def run(name: str, current: Any = None, since: int | None = None,
        until: int | None = None) -> MonitorResult:  # fmt: skip
    """Evaluate a window: ``current`` data, or the logged traffic of the monitor's window."""
    return _service().run(name, current, since, until)


def report(name: str, number: int | None = None) -> dict[str, Any]:
    """A window's full report (the last by default)."""
    return _service().report(name, number)


def log_labels(model: str, request_ids: Sequence[str], labels: Sequence[Any]) -> int:
    """Keep the labels of requests ``model`` answered (by the ``X-Request-Id`` each was
    answered with): a window's realised performance is computed on them."""
    return _service().log_labels(model, request_ids, labels)

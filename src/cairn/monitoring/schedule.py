"""Monitors on their schedule: each evaluated once its window has passed since its last
(``cairn monitor daemon``, or ``cairn serve --monitor`` in the serving process), with what
each window found set as Prometheus gauges; and at each look the canaries the
environments run judged on their live traffic (``cairn.releases.service.judge_canaries``).

Gauges (prometheus-client, in the registry given):

- ``cairn_feature_drift{model,feature,method}``: the deciding statistic of the column's
  last window (a p-value for a test, a distance for an effect size: ``method`` says which);
- ``cairn_feature_drifted{model,feature}``: 1 when that column drifted, else 0;
- ``cairn_dataset_drift_share{model}``: the share of the model's columns that drifted;
- ``cairn_monitor_drifting{monitor}``: 1 while the monitor's last window drifted;
- ``cairn_monitor_degraded{monitor}``: 1 while its state is degraded (``degraded_when``);
- ``cairn_monitor_window_rows{monitor}``: rows in its last window;
- ``cairn_model_metric{model,metric,kind}``: a performance figure of the last window,
  ``kind`` realised (on its labels) or estimated (from the model's confidence).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cairn.core.monitor import DEGRADED, DRIFT
from cairn.errors import CairnError
from cairn.releases.service import judge_canaries

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from cairn.core.monitor import MonitorResult
    from cairn.core.ports import Releases
    from cairn.monitoring.service import MonitorService, Status

logger = logging.getLogger(__name__)


class MonitorGauges:
    def __init__(self, registry: CollectorRegistry) -> None:
        from prometheus_client import Gauge

        self.feature = Gauge("cairn_feature_drift", "The deciding drift statistic of a "
                             "column's last window.", ("model", "feature", "method"),
                             registry=registry)  # fmt: skip
        self.drifted = Gauge("cairn_feature_drifted", "1 when the column drifted in its last "
                             "window.", ("model", "feature"), registry=registry)  # fmt: skip
        self.share = Gauge("cairn_dataset_drift_share", "The share of the model's columns "
                           "that drifted in the last window.", ("model",),
                           registry=registry)  # fmt: skip
        self.drifting = Gauge("cairn_monitor_drifting", "1 while the monitor's last window "
                              "drifted.", ("monitor",), registry=registry)  # fmt: skip
        self.degraded = Gauge("cairn_monitor_degraded", "1 while the monitor's state is "
                              "degraded.", ("monitor",), registry=registry)  # fmt: skip
        self.rows = Gauge("cairn_monitor_window_rows", "Rows in the monitor's last window.",
                          ("monitor",), registry=registry)  # fmt: skip
        self.metric = Gauge("cairn_model_metric", "A performance figure of the model's last "
                            "window.", ("model", "metric", "kind"), registry=registry)  # fmt: skip

    def show(self, report: dict[str, Any]) -> None:
        """Set the gauges from one window's report (``MonitorService.report``)."""
        model, monitor = report["model"], report["monitor"]
        drifted = report["state"] == DRIFT or bool((report.get("drift") or {}).get("drifted"))
        self.drifting.labels(monitor).set(1 if drifted else 0)
        self.degraded.labels(monitor).set(1 if report["state"] == DEGRADED else 0)
        self.rows.labels(monitor).set(report["rows"])
        found = report.get("performance") or {}
        for metric, value in (found.get("realised") or {}).items():
            self.metric.labels(model, metric, "realised").set(value)
        if found.get("estimated"):
            self.metric.labels(model, "accuracy", "estimated").set(found["estimated"]["accuracy"])
        drift = report.get("drift")
        if not drift:
            return
        self.share.labels(model).set(drift["share"])
        for column in drift["columns"]:
            score = column["score"]
            self.feature.labels(model, column["column"], column["method"]).set(
                float("nan") if score is None else score
            )
            self.drifted.labels(model, column["column"]).set(1 if column["drifted"] else 0)


def due(found: list[Status], now_ms: int) -> list[str]:
    """The monitors whose window has passed since their last evaluation (or that have
    none yet)."""
    return [
        s.monitor.name
        for s in found
        if s.last is None or now_ms - s.last.until >= s.monitor.window_seconds * 1000
    ]


def run_due(
    service: MonitorService,
    gauges: MonitorGauges | None = None,
    on_result: Callable[[MonitorResult], None] | None = None,
) -> list[MonitorResult]:
    """Evaluate every monitor that is due, each on its own: one that fails is logged and
    the others run."""
    evaluated = []
    for name in due(service.status(), int(time.time() * 1000)):
        try:
            found = service.run(name)
        except CairnError as error:  # a model gone, a reference refused: said, not fatal
            logger.error("monitor %s: %s", name, error)
            continue
        evaluated.append(found)
        if gauges is not None:
            gauges.show(service.report(name, found.number))
        if on_result is not None:
            on_result(found)
    return evaluated


class Scheduler:
    """``run_due`` every ``interval`` seconds in a thread of its own, until stopped; and,
    given ``releases``, the canaries judged on their live traffic each time too."""

    def __init__(self, service: MonitorService, interval: float = 60.0,
                 gauges: MonitorGauges | None = None,
                 releases: Releases | None = None) -> None:  # fmt: skip
        self._service, self._interval, self._gauges = service, interval, gauges
        self._releases = releases
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cairn-monitors", daemon=True)

    def start(self) -> Scheduler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                run_due(self._service, self._gauges)
                if self._releases is not None:
                    judge_canaries(self._releases)
            except Exception:  # the store out of reach: said, and tried again next time
                logger.exception("monitors could not be evaluated")
            self._stop.wait(self._interval)

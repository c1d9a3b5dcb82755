"""``{evaluate: {data: holdout@latest, target: label, metrics: {accuracy: ">= 0.85"}}}``: a
fresh evaluation of the candidate on a held-out data version, in a confined worker
(``cairn.releases.evaluate``), meets each bound."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cairn.core.gates.base import (
    EVALUATION_TIMEOUT,
    Evaluation,
    Facts,
    GateResult,
    compares,
    comparison,
    name,
    only,
    timeout,
)
from cairn.errors import CairnError, InvalidInput

KEY = "evaluate"
METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss",
           "r2", "mae", "mse", "rmse")  # fmt: skip


def parse(found: Mapping[str, Any], where: str) -> dict[str, Any]:
    only(found, {"evaluate"}, where)
    spec = found["evaluate"]
    if not isinstance(spec, Mapping):
        raise InvalidInput(f"{where}.evaluate: expected data and metrics")
    only(spec, {"data", "target", "metrics", "timeout"}, f"{where}.evaluate")
    name(spec.get("data"), f"{where}.evaluate.data")
    target = name(spec.get("target", "target"), f"{where}.evaluate.target")
    metrics = spec.get("metrics")
    if not isinstance(metrics, Mapping) or not metrics:
        raise InvalidInput(f"{where}.evaluate.metrics: expected {{metric: '>= 0.85'}}")
    for key, condition in metrics.items():
        if key not in METRICS:
            raise InvalidInput(f"{where}.evaluate.metrics.{key}: expected one of "
                               f"{', '.join(METRICS)}")  # fmt: skip
        comparison(condition, f"{where}.evaluate.metrics.{key}")
    seconds = timeout(spec.get("timeout", EVALUATION_TIMEOUT), f"{where}.evaluate.timeout")
    return {"data": spec["data"], "target": target, "metrics": dict(metrics), "timeout": seconds}


def describe(spec: Mapping[str, Any]) -> str:
    wanted = ", ".join(f"{k} {v}" for k, v in spec["metrics"].items())
    return f"evaluated on {spec['data']} (target {spec['target']}): {wanted}"


def evaluation(spec: Mapping[str, Any]) -> Evaluation:
    """What the gate asks the evaluator for."""
    return Evaluation(spec["data"], spec["target"], tuple(spec["metrics"]), spec["timeout"])


def check(spec: Mapping[str, Any], facts: Facts) -> GateResult:
    said, asked = describe(spec), evaluation(spec)
    try:
        used, measured = facts.evaluate(asked)
    except CairnError as exc:  # the model's failure too: a failed gate, never a crash
        reason = f"could not evaluate on {asked.data}: {exc.message}"
        return GateResult(said, False, reason, {"data": spec["data"]})
    failed = []
    for metric, condition in spec["metrics"].items():
        operator, bound = comparison(condition, metric)
        value = measured.get(metric)
        if value is None or not compares(value, operator, bound):
            failed.append(
                f"{metric} {'missing' if value is None else f'{value:.6g}'} (want {condition})"
            )
    ok = not failed
    reason = "all met" if ok else "; ".join(failed)
    return GateResult(said, ok, reason, {"data": used, "measured": dict(measured),
                                         "wanted": dict(spec["metrics"])})  # fmt: skip

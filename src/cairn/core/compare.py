"""Runs side by side: every param and latest metric, and whether the runs differ on it."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from cairn.core.run import Run


@dataclass(frozen=True, slots=True)
class ComparedValue:
    kind: str  # "param" or "metric"
    key: str
    values: tuple[str | float | None, ...]  # one per run; None where the run lacks it
    differs: bool


def compare_runs(runs: Sequence[Run]) -> list[ComparedValue]:
    """Params first, then metrics, each sorted by key."""
    rows: list[ComparedValue] = []
    for key in sorted({k for run in runs for k in run.params}):
        params = tuple(run.params.get(key) for run in runs)
        rows.append(ComparedValue("param", key, params, len(set(params)) > 1))
    for key in sorted({k for run in runs for k in run.metrics}):
        metrics = tuple(run.metrics[key].value if key in run.metrics else None for run in runs)
        rows.append(ComparedValue("metric", key, metrics, _differ(metrics)))
    return rows


def _differ(values: tuple[float | None, ...]) -> bool:
    # NaN != NaN, yet two runs that both logged NaN agree.
    canonical = {"nan" if v is not None and math.isnan(v) else v for v in values}
    return len(canonical) > 1

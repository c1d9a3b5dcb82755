"""Comparing runs marks exactly the rows where they differ."""

from __future__ import annotations

import math

from cairn.core.compare import compare_runs
from cairn.core.run import Lifecycle, Metric, Run, RunStatus


def make(params: dict[str, str], metrics: dict[str, float]) -> Run:
    return Run(
        "a" * 32,
        "e",
        "n",
        RunStatus.FINISHED,
        1,
        2,
        "u",
        None,
        None,
        None,
        Lifecycle.ACTIVE,
        params,
        {k: Metric(k, v, 0, 0) for k, v in metrics.items()},
        {},
    )


def test_differences_are_marked() -> None:
    rows = compare_runs(
        [
            make({"lr": "0.1", "d": "6"}, {"auc": 0.9, "x": math.nan}),
            make({"lr": "0.2", "d": "6"}, {"auc": 0.9, "x": math.nan, "y": 1.0}),
        ]
    )
    marked = {(r.kind, r.key): r.differs for r in rows}
    assert marked == {
        ("param", "d"): False,
        ("param", "lr"): True,
        ("metric", "auc"): False,
        ("metric", "x"): False,
        ("metric", "y"): True,
    }
    assert [r.values for r in rows if r.key == "y"] == [(None, 1.0)]

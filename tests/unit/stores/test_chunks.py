"""A batch grouped per key, each key's latest point, and history read back from chunks."""

from __future__ import annotations

import math

from cairn.core.packing import pack
from cairn.core.run import MetricSeries, as_batch
from cairn.stores.metadata.chunks import history


def test_loose_points_are_grouped_per_key_in_logged_order() -> None:
    batch = as_batch([("a", 1.0, 0, 10), ("b", 2.0, 0, 11), ("a", 3.0, 1, 12)])
    assert batch == {
        "a": MetricSeries([1.0, 3.0], [0, 1], [10, 12]),
        "b": MetricSeries([2.0], [0], [11]),
    }


def test_latest_is_highest_step_then_latest_timestamp_then_last_logged() -> None:
    def latest(values: list[float], steps: list[int], stamps: list[int]) -> float:
        series = MetricSeries(values, steps, stamps)
        return series.values[series.latest()]

    assert latest([1.0, 2.0], [5, 3], [1, 9]) == 1.0
    assert latest([1.0, 2.0], [5, 5], [2, 1]) == 1.0
    assert latest([1.0, 2.0], [5, 5], [1, 1]) == 2.0


def test_history_orders_by_step_and_keeps_non_finite_values() -> None:
    blobs = [
        (pack([3, 1], "q"), pack([0, 0], "q"), pack([math.inf, 1.0], "d")),
        (pack([2], "q"), pack([0], "q"), pack([math.nan], "d")),
    ]
    points = history("k", blobs)
    assert [m.step for m in points] == [1, 2, 3]
    assert math.isnan(points[1].value)
    assert points[2].value == math.inf

"""The wire shape: non-finite floats survive JSON, columnar points are checked."""

from __future__ import annotations

import math

import orjson
import pytest

from cairn.core.codec import points_from_columns, points_to_columns, run_from_dict, run_to_dict
from cairn.core.run import Lifecycle, Metric, Run, RunStatus
from cairn.errors import InvalidInput


def test_points_round_trip_through_json_with_non_finite_values() -> None:
    points = [
        ("a", 0.5, 0, 1),
        ("a", math.inf, 1, 2),
        ("b", -math.inf, 0, 3),
        ("b", math.nan, 1, 4),
    ]
    back = points_from_columns(orjson.loads(orjson.dumps(points_to_columns(points))))
    assert back[:3] == points[:3]
    assert math.isnan(back[3][1])


@pytest.mark.parametrize(
    ("columns", "words"),
    [
        ({"keys": ["a"], "values": [1.0], "steps": [], "timestamps": [1]}, "equal lengths"),
        ({"keys": ["a"], "values": ["x"], "steps": [0], "timestamps": [1]}, "expected a number"),
        ({"keys": ["a"], "values": [1.0], "steps": [0.5], "timestamps": [1]}, "steps must be"),
        ({"keys": ["a"], "values": [1.0], "steps": [2**63], "timestamps": [1]}, "steps must be"),
        ({"keys": ["../x"], "values": [1.0], "steps": [0], "timestamps": [1]}, "metrics key"),
    ],
)
def test_bad_columns_are_refused(columns: dict[str, list[object]], words: str) -> None:
    with pytest.raises(InvalidInput, match="metrics") as caught:
        points_from_columns(columns)
    assert words in str(caught.value)


def test_run_round_trip() -> None:
    run = Run(
        "a" * 32,
        "e" * 32,
        "n",
        RunStatus.FINISHED,
        1,
        2,
        "u",
        None,
        "c",
        "s",
        Lifecycle.ACTIVE,
        {"p": "1"},
        {"m": Metric("m", math.inf, 3, 4)},
        {"t": "v"},
    )
    assert run_from_dict(orjson.loads(orjson.dumps(run_to_dict(run)))) == run

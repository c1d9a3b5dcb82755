"""The wire shape: non-finite floats survive JSON, columnar points are checked."""

from __future__ import annotations

import math

import orjson
import pytest

from cairn.core.codec import batch_from_dict, batch_to_dict, run_from_dict, run_to_dict
from cairn.core.run import Lifecycle, Metric, Run, RunStatus, as_batch
from cairn.errors import InvalidInput


@pytest.mark.parametrize("packed", [False, True], ids=["json-arrays", "packed"])
def test_points_round_trip_through_json_with_non_finite_values(packed: bool) -> None:
    points = [
        ("a", 0.5, 0, 1),
        ("a", math.inf, 1, 2),
        ("b", -math.inf, 0, 3),
        ("b", math.nan, 1, 4),
        ("c", 1e-300, -(2**63), 2**63 - 1),
    ]
    back = batch_from_dict(orjson.loads(orjson.dumps(batch_to_dict(points, packed))))
    assert list(back) == ["a", "b", "c"]
    assert list(back["a"].steps) == [0, 1]
    assert list(back["a"].values) == [0.5, math.inf]
    assert back["b"].values[0] == -math.inf
    assert math.isnan(back["b"].values[1])
    assert list(back["c"].values) == [1e-300]
    assert (list(back["c"].steps), list(back["c"].timestamps)) == ([-(2**63)], [2**63 - 1])
    assert batch_to_dict(as_batch(points), packed) == batch_to_dict(points, packed)


@pytest.mark.parametrize(
    ("metrics", "words"),
    [
        ({"a": {"values": [1.0], "steps": [], "timestamps": [1]}}, "equal lengths"),
        ({"a": {"values": ["x"], "steps": [0], "timestamps": [1]}}, "expected a number"),
        ({"a": {"values": [1.0], "steps": [0.5], "timestamps": [1]}}, "steps must be"),
        ({"a": {"values": [1.0], "steps": [0], "timestamps": ["1"]}}, "timestamps must"),
        ({"a": {"values": [1.0], "steps": [2**63], "timestamps": [1]}}, "steps must be"),
        ({"a": {"values": 1.0, "steps": [0], "timestamps": [1]}}, "values must be an array"),
        ({"a": {"values": "AAAA", "steps": [0], "timestamps": [1]}}, "whole 8-byte"),
        ({"a": {"values": "not base64!", "steps": [0], "timestamps": [1]}}, "not valid base64"),
        ({"a": {"values": "\u00ddAAA", "steps": [0], "timestamps": [1]}}, "not valid base64"),
        ({"a": {"values": [1.0], "steps": "AAAAAAAAAAAAAAAAAAAAAA==", "timestamps": [1]}}, "equal"),
        ({"a": [1.0, 2.0]}, "expected an object"),
        ({"../x": {"values": [1.0], "steps": [0], "timestamps": [1]}}, "metrics key"),
        ([1, 2], "expected an object mapping"),
    ],
)
def test_bad_batches_are_refused(metrics: object, words: str) -> None:
    with pytest.raises(InvalidInput, match="metrics") as caught:
        batch_from_dict(metrics)  # type: ignore[arg-type]
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

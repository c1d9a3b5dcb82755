"""Search spaces as `cairn sweep --param` takes them."""

from __future__ import annotations

import pytest

from cairn.errors import InvalidInput
from cairn.pipelines.sweep import Dimension, parse_dimension


def test_each_kind_of_dimension_is_understood() -> None:
    assert parse_dimension("lr=loguniform(1e-4, 1e-1)") == Dimension(
        "lr", "loguniform", (1e-4, 1e-1)
    )
    assert parse_dimension("depth=int(3,10)") == Dimension("depth", "int", (3, 10))
    assert parse_dimension("n=logint(8,512)") == Dimension("n", "logint", (8, 512))
    assert parse_dimension(" p = uniform(0, 0.5) ") == Dimension("p", "uniform", (0.0, 0.5))
    assert parse_dimension("kind=choice(gbm, 3, 0.5, true)") == Dimension(
        "kind", "choice", ("gbm", 3, 0.5, True)
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("lr", "expected NAME=KIND"),
        ("lr=normal(0,1)", "KIND one of uniform, loguniform, int, logint, choice"),
        ("lr=uniform(1)", "uniform takes two numbers"),
        ("lr=uniform(a,b)", "uniform takes two numbers"),
        ("lr=uniform(2,1)", "expected low < high, got 2.0 and 1.0"),
        ("lr=loguniform(0,1)", "a log scale needs low > 0"),
        ("depth=int(1.5,3)", "int takes two numbers"),
        ("kind=choice()", "choice(…) needs at least one value"),
        (f"depth=int(1,{10**400})", "expected low < high"),  # no float holds it
    ],
)
def test_a_bad_dimension_says_what_was_expected(spec: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_dimension(spec)


@pytest.mark.parametrize("backoff", [float("inf"), -1.0, 10**400])
def test_a_step_backoff_must_be_a_finite_number_of_seconds(backoff: float) -> None:
    from cairn.pipelines.definition import Step

    with pytest.raises(InvalidInput, match="backoff a number of seconds"):
        Step(print, retries=1, backoff=backoff)

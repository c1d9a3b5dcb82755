"""Data quality findings, each its own: what a user reads when a window is wrong on its
face."""

from __future__ import annotations

import numpy as np

from cairn.monitoring.quality import quality_findings
from cairn.monitoring.reference import reference_of


def _reference() -> dict:
    rng = np.random.default_rng(0)
    return reference_of({
        "age": rng.normal(40, 10, 2_000).clip(18, 90),
        "plan": rng.choice(["basic", "pro", "team"], 2_000),
        "tenure": rng.integers(0, 60, 2_000),
    })  # fmt: skip


def test_a_clean_window_has_no_findings() -> None:
    rng = np.random.default_rng(1)
    window = {"age": rng.normal(40, 10, 500).clip(18, 90),
              "plan": rng.choice(["basic", "pro", "team"], 500),
              "tenure": rng.integers(0, 60, 500)}  # fmt: skip
    assert quality_findings(_reference(), window) == []


def test_each_problem_is_its_own_finding() -> None:
    rng = np.random.default_rng(2)
    age = rng.normal(40, 10, 500).clip(18, 90)
    age[:50] = np.nan  # 10% missing, none in the reference
    age[50:60] = 150  # 2% past the reference's maximum
    plan = rng.choice(["basic", "pro", "team", "enterprise"], 500, p=[0.3, 0.3, 0.3, 0.1])
    window = {"age": age, "plan": plan, "region": rng.choice(["eu", "us"], 500)}
    found = {(f.column, f.kind): f for f in quality_findings(_reference(), window)}
    assert set(found) == {("age", "missing_rate"), ("age", "out_of_range"),
                          ("plan", "unseen_category"), ("tenure", "missing_column"),
                          ("region", "new_column")}  # fmt: skip
    assert found["age", "missing_rate"].message == (
        "age: 10.0% of values missing, 0.0% in the reference"
    )
    assert found["age", "out_of_range"].share == 10 / 450
    assert "'enterprise'" in found["plan", "unseen_category"].message


def test_text_where_numbers_were_is_a_type_finding() -> None:
    window = {"age": np.array(["forty"] * 10), "plan": np.array(["pro"] * 10),
              "tenure": np.arange(10)}  # fmt: skip
    (finding,) = quality_findings(_reference(), window)
    assert (finding.column, finding.kind) == ("age", "type")
    assert finding.message == "age: numbers expected, got text values"

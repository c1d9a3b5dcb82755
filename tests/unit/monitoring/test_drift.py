"""Drift as a user relies on it: a column that moved is flagged, and columns that did not
are left alone, at a thousand rows as at a million."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from scipy.stats import ks_2samp, wasserstein_distance

from cairn.errors import InvalidInput
from cairn.monitoring.drift import Choice, column_drift, dataset_drift
from cairn.monitoring.reference import column_reference, from_json, reference_of, to_json

Sampler = Callable[[np.random.Generator, int], np.ndarray]
# Unshifted columns of several shapes: symmetric, skewed, heavy-tailed, whole numbers, a
# handful of repeated values.
SHAPES: list[Sampler] = [
    lambda rng, n: rng.normal(10, 2, n),
    lambda rng, n: rng.lognormal(0, 0.8, n),
    lambda rng, n: rng.standard_t(4, n),
    lambda rng, n: rng.poisson(4, n).astype(float),
    lambda rng, n: rng.uniform(-1, 1, n),
    lambda rng, n: rng.exponential(3, n),
    lambda rng, n: rng.integers(0, 5, n).astype(float),
]
CATEGORIES = np.array(["a", "b", "c", "d", "e"])
BEFORE = np.array([0.4, 0.25, 0.15, 0.12, 0.08])
AFTER = np.array([0.25, 0.25, 0.2, 0.18, 0.12])  # 15% of the rows changed category


def _table(rng: np.random.Generator, n: int, shifted: bool) -> dict[str, Any]:
    """20 numeric columns that do not move, 5 that move by 0.2 standard deviations (their
    mean, or their spread), 4 categorical columns that do not move and 2 that do."""
    columns: dict[str, Any] = {}
    for index in range(20):
        columns[f"same{index}"] = SHAPES[index % len(SHAPES)](rng, n)
    for index in range(5):
        values = SHAPES[index](rng, n)
        if shifted:
            # The shapes' own standard deviations, by their formula: the shift is 0.2 of it.
            values = values + 0.2 * np.std(SHAPES[index](np.random.default_rng(99), 200_000))
        columns[f"moved{index}"] = values
    for index in range(4):
        columns[f"kind{index}"] = rng.choice(CATEGORIES, n, p=BEFORE)
    for index in range(2):
        columns[f"kind_moved{index}"] = rng.choice(CATEGORIES, n, p=AFTER if shifted else BEFORE)
    return columns


@pytest.mark.parametrize("rows", [1_000, 100_000])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_moved_columns_are_flagged_and_at_most_one_unmoved_at_any_size(
    rows: int, seed: int
) -> None:
    _check_sizes(rows, seed)


def test_at_a_million_rows_the_moved_are_flagged_and_the_rest_left_alone() -> None:
    _check_sizes(1_000_000, 7)


def _check_sizes(rows: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    reference = reference_of(_table(rng, rows, shifted=False))
    found = dataset_drift(reference, _table(rng, rows, shifted=True))
    by_name = {c.column: c for c in found.columns}
    moved = [n for n in by_name if "moved" in n]
    assert all(by_name[n].drifted for n in moved), [
        (n, by_name[n].method, by_name[n].score) for n in moved if not by_name[n].drifted
    ]
    unmoved_numeric = [n for n in by_name if n.startswith("same") and by_name[n].drifted]
    assert len(unmoved_numeric) <= 1, unmoved_numeric
    unmoved_kinds = [n for n in by_name if n.startswith("kind") and "moved" not in n
                     and by_name[n].drifted]  # fmt: skip
    assert len(unmoved_kinds) <= 1, unmoved_kinds
    # A test decides where the samples are small, an effect size where they are large.
    expected = ("ks_t", "chi_square") if rows < 10_000 else ("wasserstein", "jensen_shannon")
    assert {by_name["same0"].method, by_name["kind0"].method} == set(expected)
    assert not found.drifted  # 7 of 31 columns moved: under half
    assert found.share == pytest.approx(7 / 31, abs=2 / 31)


def test_the_statistics_agree_with_scipy_on_the_raw_samples() -> None:
    rng = np.random.default_rng(5)
    before, after = rng.normal(0, 1, 20_000), rng.normal(0.1, 1.2, 5_000)
    found = column_drift("x", column_reference("x", before), after)
    exact_ks = ks_2samp(before, after).statistic
    exact_w = wasserstein_distance(before, after) / before.std()
    # The reference keeps 1,001 quantiles, not the values: a CDF known to 0.1%.
    assert found.scores["wasserstein"] == pytest.approx(exact_w, rel=0.02)
    assert found.scores["ks"] < 1e-6
    assert exact_ks > 0.05
    assert found.scores["psi"] > 0
    assert 0 < found.scores["jensen_shannon"] < 1


def test_a_dataset_drifts_when_half_its_columns_do() -> None:
    rng = np.random.default_rng(3)
    reference = reference_of({f"c{i}": rng.normal(0, 1, 5_000) for i in range(4)})
    current = {f"c{i}": rng.normal(1.0 if i < 2 else 0, 1, 5_000) for i in range(4)}
    found = dataset_drift(reference, current)
    assert (found.share, found.drifted) == (0.5, True)
    assert not dataset_drift(reference, current, share=0.75).drifted


def test_a_column_may_choose_its_method_and_threshold() -> None:
    rng = np.random.default_rng(4)
    reference = column_reference("x", rng.normal(0, 1, 50_000))
    current = rng.normal(0.15, 1, 50_000)
    assert column_drift("x", reference, current).drifted  # 0.15 sd: past 0.1
    lenient = column_drift("x", reference, current, Choice(threshold=0.2))
    assert (lenient.method, lenient.drifted) == ("wasserstein", False)
    by_psi = column_drift("x", reference, current, Choice(method="psi"))
    assert (by_psi.method, by_psi.threshold, by_psi.drifted) == ("psi", 0.2, False)
    with pytest.raises(InvalidInput, match="'chi_square' is not one of ks_t, ks"):
        column_drift("x", reference, current, Choice(method="chi_square"))


def test_values_past_the_reference_range_count_in_full() -> None:
    reference = column_reference("x", np.linspace(0, 1, 10_001))
    moved = column_drift("x", reference, np.linspace(0, 1, 10_001) + 5)
    # Every value moved by 5, the reference's spread is 0.289: 17.3 standard deviations.
    assert moved.scores["wasserstein"] == pytest.approx(5 / 0.2887, rel=0.01)
    assert moved.drifted


def test_categories_never_seen_and_missing_values() -> None:
    rng = np.random.default_rng(6)
    reference = column_reference("kind", rng.choice(CATEGORIES, 5_000, p=BEFORE))
    current = np.concatenate([rng.choice(CATEGORIES, 4_000, p=BEFORE), np.full(1_000, "z")])
    found = column_drift("kind", reference, current)
    assert found.drifted
    assert found.scores["jensen_shannon"] > 0.2
    with_missing = np.array([*rng.choice(CATEGORIES, 300, p=BEFORE), None, None], dtype=object)
    small = column_drift("kind", reference, with_missing)
    assert (small.rows, small.method, small.drifted) == (300, "chi_square", False)


def test_a_constant_column_drifts_only_when_it_changes() -> None:
    reference = column_reference("flag", np.ones(2_000))
    assert not column_drift("flag", reference, np.ones(500)).drifted
    assert column_drift("flag", reference, np.zeros(500)).drifted


def test_a_reference_is_stored_as_json_and_checked_when_read_back() -> None:
    rng = np.random.default_rng(8)
    reference = reference_of({"x": rng.normal(0, 1, 3_000), "kind": rng.choice(CATEGORIES, 3_000)})
    back = from_json(to_json(reference))
    current = rng.normal(0.5, 1, 3_000)
    assert (
        column_drift("x", back["x"], current).score
        == column_drift("x", reference["x"], current).score
    )
    document = to_json(reference)
    document["columns"]["x"]["edges"] = list(reversed(document["columns"]["x"]["edges"]))
    with pytest.raises(InvalidInput, match="reference column 'x': edges must ascend"):
        from_json(document)
    document = to_json(reference)
    document["columns"]["x"]["cdf"][5] = float("nan")
    with pytest.raises(InvalidInput, match="reference column 'x': edges must ascend"):
        from_json(document)
    document["columns"]["x"] = {"kind": "numeric", "count": -1, "missing": 0}
    with pytest.raises(InvalidInput, match="'count' and 'missing' must be counts"):
        from_json(document)
    with pytest.raises(InvalidInput, match="expected a 'cairn-reference/1' document"):
        from_json({"format": "other"})


def test_a_column_of_no_values_or_of_rows_of_values_is_refused() -> None:
    with pytest.raises(InvalidInput, match="column 'x': no values"):
        column_reference("x", [])
    with pytest.raises(InvalidInput, match=r"expected one value per row, got shape \[2, 2\]"):
        column_reference("x", [[1, 2], [3, 4]])
    with pytest.raises(InvalidInput, match="column 'x': no finite values"):
        column_reference("x", [float("nan")] * 3)


def test_a_table_read_from_a_file_is_compared_column_by_column() -> None:
    import pandas as pd

    rng = np.random.default_rng(9)
    training = pd.DataFrame({"age": rng.normal(40, 10, 3_000),
                             "plan": rng.choice(["basic", "pro"], 3_000)})  # fmt: skip
    window = pd.DataFrame(
        {"age": rng.normal(48, 10, 800), "plan": rng.choice(["basic", "pro"], 800)}
    )
    found = dataset_drift(reference_of(training), window)
    assert [(c.column, c.method, c.drifted) for c in found.columns] == [
        ("age", "ks_t", True),
        ("plan", "chi_square", False),
    ]


def test_a_pandas_text_column_is_counted_as_the_same_values_in_an_array() -> None:
    """A DataFrame's text (Arrow-backed under pandas 3) is counted where it lies, never
    turned into an array of strings: the same counts, missing values and scores."""
    import pandas as pd

    rng = np.random.default_rng(3)
    values = rng.choice(np.array(["a", "b", "c", "d"]), 5_000).astype(object)
    values[::50] = None
    current = rng.choice(np.array(["a", "b", "c", "e"]), 5_000).astype(object)
    current[::7] = None
    as_array = reference_of({"plan": values})
    as_table = reference_of(pd.DataFrame({"plan": pd.Series(values, dtype="string")}))
    assert as_array == as_table
    from_array = dataset_drift(as_array, {"plan": current}).columns[0]
    table = pd.DataFrame({"plan": pd.Series(current, dtype="string")})
    from_table = dataset_drift(as_array, table).columns[0]
    assert from_array == from_table
    assert from_table.rows == 5_000 - len(range(0, 5_000, 7))

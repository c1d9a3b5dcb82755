"""Drift: whether a window of current data is distributed as the reference was, column by
column, and for the dataset.

Each column is one vectorised pass against its reference (``cairn.monitoring.reference``):
a numeric column is sorted and the reference's quantile edges found in it (one sort, one
``searchsorted`` of the edges), from which every statistic below follows; a categorical column is
counted by category. Which method decides depends on how much the two samples can tell
apart: their effective size, ``n·m / (n + m)`` for ``n`` current and ``m`` reference values.
Under ``EFFECTIVE_SIZE`` a distance between two samples of the same distribution is still
mostly noise (around 0.06 standard deviations at 1,000 against 1,000), so a test decides;
from there an effect size does, so that a million rows do not make every column
"significant". By default (``docs/monitoring.md`` says why):

- numeric, small: ``ks_t`` — the two-sample Kolmogorov–Smirnov test (any change of shape)
  and Welch's t-test (a moved mean, which KS is slow to see), their smaller p-value doubled
  (Bonferroni), drifted under 0.01;
- numeric, large: ``wasserstein`` — the Wasserstein distance normalised by the reference's
  standard deviation (how far, in standard deviations, the mass moved), drifted from 0.1;
- categorical, small: ``chi_square`` — the chi-square test of the two-sample contingency
  table (reference counts against current counts, not a fit to the reference's
  proportions), drifted under 0.01;
- categorical, large: ``jensen_shannon`` — the Jensen–Shannon distance (base 2) of the two
  distributions, drifted from 0.1.

Every statistic a column's kind allows is computed and kept beside the deciding one
(``scores``), and any may decide instead, per column, with its own threshold: ``ks_t``,
``ks``, ``wasserstein``, ``psi`` (population stability index on ten equal-mass reference
bins), ``jensen_shannon``; for categories ``chi_square``, ``jensen_shannon``, ``psi``. The
dataset drifted when the share of drifted columns reaches a threshold (0.5).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cairn.errors import InvalidInput
from cairn.monitoring.reference import (
    OTHER,
    CategoricalReference,
    ColumnReference,
    NumericReference,
    as_categories,
    as_column,
    category_counts,
    is_numeric,
)

EFFECTIVE_SIZE = 5_000  # under it a test decides, from it an effect size
DATASET_SHARE = 0.5
_PSI_BINS = 10
_SMOOTHING = 1e-4  # a share of 0 in a bin, for PSI's logarithm


@dataclass(frozen=True)
class Method:
    """A drift statistic: ``p_value`` ones drift below their threshold, distances from it."""

    name: str
    threshold: float
    p_value: bool = False

    def drifted(self, score: float, threshold: float | None = None) -> bool:
        limit = self.threshold if threshold is None else threshold
        return score < limit if self.p_value else score >= limit


NUMERIC_METHODS = {m.name: m for m in (
    Method("ks_t", 0.01, p_value=True), Method("ks", 0.01, p_value=True),
    Method("wasserstein", 0.1), Method("psi", 0.2), Method("jensen_shannon", 0.1),
)}  # fmt: skip
CATEGORICAL_METHODS = {m.name: m for m in (
    Method("chi_square", 0.01, p_value=True), Method("jensen_shannon", 0.1), Method("psi", 0.2),
)}  # fmt: skip


@dataclass(frozen=True)
class ColumnDrift:
    column: str
    kind: str  # numeric, categorical
    rows: int  # current values compared (present, not missing)
    method: str  # the one that decided
    score: float
    threshold: float
    drifted: bool
    scores: Mapping[str, float] = field(default_factory=dict)  # every statistic computed


@dataclass(frozen=True)
class DatasetDrift:
    columns: list[ColumnDrift]
    share: float  # of the columns compared, those that drifted
    threshold: float
    drifted: bool


@dataclass(frozen=True)
class Choice:
    """A column's own method and threshold, instead of the defaults."""

    method: str | None = None
    threshold: float | None = None


def dataset_drift(
    reference: Mapping[str, ColumnReference],
    current: Mapping[str, Any],
    choices: Mapping[str, Choice] | None = None,
    share: float = DATASET_SHARE,
) -> DatasetDrift:
    """The drift of each column both have (of a numeric column only while the current is
    numeric too: a type change is a quality finding, ``cairn.monitoring.quality``), and of
    the dataset.

    Raises:
        InvalidInput: a choice names a method the column's kind has not, or a column no
            values.
    """
    choices = choices or {}
    compared = []
    for name, ref in reference.items():
        if name not in current:
            continue
        if isinstance(ref, NumericReference):
            values = as_column(name, current[name])
            if not is_numeric(values):
                continue
        else:
            values = as_categories(name, current[name])
        compared.append((name, ref, values, choices.get(name, Choice())))
    # Columns in threads: NumPy lets go of the interpreter while it counts a column, so a
    # wide window uses every core.
    with ThreadPoolExecutor(min(len(compared), os.cpu_count() or 1) or 1) as pool:
        found = list(pool.map(lambda column: column_drift(*column), compared))
    drifted = sum(c.drifted for c in found)
    ratio = drifted / len(found) if found else 0.0
    return DatasetDrift(found, ratio, share, bool(found) and ratio >= share)


def column_drift(name: str, reference: ColumnReference, values: Any,
                 choice: Choice = Choice()) -> ColumnDrift:  # fmt: skip
    """Raises:
    InvalidInput: the choice names a method the column's kind has not.
    """
    if isinstance(reference, NumericReference):
        array = as_column(name, values)
        scores, rows = _numeric_scores(reference, array.astype(np.float64, copy=False))
        methods, tested, measured = NUMERIC_METHODS, "ks_t", "wasserstein"
    else:
        scores, rows = _categorical_scores(reference, as_categories(name, values))
        methods, tested, measured = CATEGORICAL_METHODS, "chi_square", "jensen_shannon"
    effective = rows * reference.count / max(rows + reference.count, 1)
    default = tested if effective < EFFECTIVE_SIZE else measured
    method = methods.get(choice.method or default)
    if method is None:
        raise InvalidInput(f"column {name!r}: drift method {choice.method!r} is not one of "
                           f"{', '.join(methods)} for a {reference.kind} column")  # fmt: skip
    threshold = method.threshold if choice.threshold is None else choice.threshold
    score = scores[method.name]
    drifted = rows > 0 and method.drifted(score, threshold)
    return ColumnDrift(name, reference.kind, rows, method.name, score, threshold, drifted,
                       scores)  # fmt: skip


def _numeric_scores(ref: NumericReference, values: np.ndarray) -> tuple[dict[str, float], int]:
    finite = np.isfinite(values)
    # Sorted once (a vectorised sort of a million numbers takes milliseconds), every
    # reference edge is then found in it by bisection: ten times quicker than finding each
    # of a million values among the edges.
    ordered = np.sort(values) if finite.all() else np.sort(values[finite])
    n = int(ordered.size)
    if n == 0:
        return dict.fromkeys(NUMERIC_METHODS, float("nan")), 0
    edges = ref.edges
    # How many current values are at or below each reference edge.
    current_cdf = np.searchsorted(ordered, edges, side="right") / n
    gap = np.abs(ref.cdf - current_cdf)
    statistic = float(gap.max())
    # Wasserstein-1 is the area between the two CDFs: over the reference's range bin by
    # bin, beyond it the current mass times how far past the range it lies.
    low = ordered[: np.searchsorted(ordered, edges[0], side="left")]
    high = ordered[np.searchsorted(ordered, edges[-1], side="right") :]
    outside = float((edges[0] - low).sum() + (high - edges[-1]).sum())
    area = float((gap[:-1] * np.diff(edges)).sum()) + outside / n
    scale = ref.std if ref.std > 0 else 1.0
    reference_share, current_share = _equal_mass_bins(ref, current_cdf)
    ks = _ks_p_value(statistic, ref.count, n)
    return {
        "ks_t": min(1.0, 2 * min(ks, _welch_p_value(ref, ordered))),
        "ks": ks,
        "wasserstein": area / scale,
        "psi": _psi(reference_share, current_share),
        "jensen_shannon": _jensen_shannon(reference_share, current_share),
    }, n


def _equal_mass_bins(ref: NumericReference, current_cdf: np.ndarray) -> tuple[np.ndarray, ...]:
    """The reference's and the current's shares in ten bins of equal reference mass (as
    equal as ties allow)."""
    cuts = np.unique(np.searchsorted(ref.cdf, np.arange(1, _PSI_BINS) / _PSI_BINS))
    cuts = cuts[cuts < ref.cdf.size - 1]
    one, other = (np.diff(np.concatenate(([0.0], cdf[cuts], [1.0])))
                  for cdf in (ref.cdf, current_cdf))  # fmt: skip
    return one, other


def _ks_p_value(statistic: float, m: int, n: int) -> float:
    """The two-sample KS test's p-value, from the Kolmogorov distribution."""
    from scipy.special import kolmogorov

    return float(kolmogorov(statistic * np.sqrt(m * n / (m + n))))


def _welch_p_value(ref: NumericReference, present: np.ndarray) -> float:
    """Welch's t-test of the two means (their variances need not be equal)."""
    from scipy.stats import ttest_ind_from_stats

    n = present.size
    found = ttest_ind_from_stats(ref.mean, ref.std, ref.count, float(present.mean()),
                                 float(present.std()), n, equal_var=False)  # fmt: skip
    p = float(found.pvalue)
    if np.isnan(p):  # both constant: the same constant or not
        return 1.0 if ref.mean == float(present.mean()) else 0.0
    return p


def _categorical_scores(ref: CategoricalReference,
                        values: Any) -> tuple[dict[str, float], int]:  # fmt: skip
    current, _ = category_counts(values)
    n = sum(current.values())
    if n == 0:
        return dict.fromkeys(CATEGORICAL_METHODS, float("nan")), 0
    known = [c for c in ref.counts if c != OTHER]
    reference_counts = [ref.counts[c] for c in known]
    current_counts = [current.pop(c, 0) for c in known]
    # The reference counted its rarest categories together: the current's values of no
    # category it names go there; without that bucket they are unseen, a column of their own.
    reference_counts.append(ref.counts.get(OTHER, 0))
    current_counts.append(sum(current.values()))
    table = np.array([reference_counts, current_counts], dtype=np.float64)
    table = table[:, table.sum(axis=0) > 0]
    reference_share, current_share = table[0] / table[0].sum(), table[1] / table[1].sum()
    return {
        "chi_square": _chi_square_p_value(table),
        "jensen_shannon": _jensen_shannon(reference_share, current_share),
        "psi": _psi(reference_share, current_share),
    }, n


def _chi_square_p_value(table: np.ndarray) -> float:
    if table.shape[1] < 2:
        return 1.0  # one category on both sides: nothing moved
    from scipy.stats import chi2_contingency

    return float(chi2_contingency(table, correction=False).pvalue)


def _psi(expected: np.ndarray, actual: np.ndarray) -> float:
    p, q = np.clip(expected, _SMOOTHING, None), np.clip(actual, _SMOOTHING, None)
    return float(((q - p) * np.log(q / p)).sum())


def _jensen_shannon(one: np.ndarray, other: np.ndarray) -> float:
    from scipy.spatial.distance import jensenshannon

    return float(jensenshannon(one, other, base=2))

"""One evaluation of a window against a monitor's reference: drift, data quality, and the
distributions a person compares them by, as one JSON document (the report a monitor keeps
of each window, and what ``cairn monitor report`` draws).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

import numpy as np

from cairn.core.monitor import DRIFT, OK, ColumnChoice
from cairn.monitoring.drift import Choice, dataset_drift
from cairn.monitoring.quality import quality_findings
from cairn.monitoring.reference import (
    CategoricalReference,
    ColumnReference,
    NumericReference,
    as_categories,
    as_column,
    category_counts,
    is_numeric,
)

BINS = 20  # equal-width bins over the reference's range, for the histograms drawn
SHOWN_CATEGORIES = 12


def evaluate(
    reference: Mapping[str, ColumnReference],
    current: Mapping[str, Any],
    choices: Mapping[str, ColumnChoice] | None = None,
    share: float = 0.5,
) -> dict[str, Any]:
    """The report of ``current`` (a name to its values) against ``reference``: its state
    (``ok`` or ``drift``), the dataset's and each column's drift, the quality findings, and
    each column's distribution beside the reference's.

    Raises:
        InvalidInput: a choice names a method the column's kind has not, or a column holds
            no values or more than one dimension.
    """
    asked = {name: Choice(c.method, c.threshold) for name, c in (choices or {}).items()}
    drift = dataset_drift(reference, current, asked, share)
    findings = quality_findings(reference, current)
    rows = max((len(values) for values in current.values()), default=0)
    return {
        "state": DRIFT if drift.drifted else OK,
        "rows": int(rows),
        "drift": {"share": drift.share, "threshold": drift.threshold, "drifted": drift.drifted,
                  "columns": [_plain(asdict(column)) for column in drift.columns]},
        "findings": [asdict(finding) for finding in findings],
        "distributions": {name: distribution(ref, current[name])
                          for name, ref in reference.items() if name in current},
    }  # fmt: skip


def distribution(reference: ColumnReference, values: Any) -> dict[str, Any]:
    """The shares of the reference and of ``values`` over the same bins (numeric) or
    categories (the reference's most frequent, then ``other``)."""
    if isinstance(reference, NumericReference):
        array = as_column("column", values)
        if not is_numeric(array):
            return {"kind": "numeric", "edges": [], "reference": [], "current": []}
        low, high = reference.minimum, reference.maximum
        edges = np.linspace(low, high if high > low else low + 1.0, BINS + 1)
        below = np.interp(edges, reference.edges, reference.cdf, left=0.0, right=1.0)
        ref_shares = np.diff(below)
        ref_shares[0] += below[0]  # the mass at the minimum itself
        present = array.astype(np.float64, copy=False)
        present = present[np.isfinite(present)]
        counts, _ = np.histogram(np.clip(present, low, edges[-1]), bins=edges)
        outside = float(np.mean((present < low) | (present > high))) if present.size else 0.0
        return {"kind": "numeric", "edges": edges.tolist(), "reference": ref_shares.tolist(),
                "current": (counts / max(present.size, 1)).tolist(),
                "outside_range": outside}  # fmt: skip
    assert isinstance(reference, CategoricalReference)
    shown = list(reference.counts)[:SHOWN_CATEGORIES]
    total = max(sum(reference.counts.values()), 1)
    current, _ = category_counts(as_categories("column", values))
    size = max(sum(current.values()), 1)
    return {"kind": "categorical", "categories": [*shown, "other"],
            "reference": [reference.counts[c] / total for c in shown]
            + [1 - sum(reference.counts[c] for c in shown) / total],
            "current": [current.get(c, 0) / size for c in shown]
            + [1 - sum(current.get(c, 0) for c in shown) / size]}  # fmt: skip


def _plain(found: dict[str, Any]) -> dict[str, Any]:
    """NumPy numbers as Python's, for JSON."""
    return {key: _plain(value) if isinstance(value, dict)
            else value.item() if isinstance(value, np.generic) else value
            for key, value in found.items()}  # fmt: skip

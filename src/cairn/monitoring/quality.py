"""Data quality: what is wrong with a window of data on its face, each its own finding, not
folded into drift — a column gone or new, values of another type, more missing values,
values outside the range the model was trained on, categories it never saw."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from cairn.monitoring.reference import (
    OTHER,
    CategoricalReference,
    ColumnReference,
    NumericReference,
    as_categories,
    as_column,
    category_counts,
    is_numeric,
    missing_mask,
)

MISSING_RISE = 0.05  # a rise of the missing share by this much (5 points) is a finding
OUT_OF_RANGE = 0.01  # a share of values outside the reference's range past this is one
UNSEEN = 0.01  # likewise for values of categories the reference never saw
_SHOWN = 5  # unseen categories named in a finding
_DESCRIBED = {"U": "text", "S": "bytes", "O": "mixed", "M": "date and time", "m": "time span"}


@dataclass(frozen=True)
class Finding:
    column: str
    kind: str  # missing_column, new_column, type, missing_rate, out_of_range, unseen_category
    message: str
    share: float | None = None  # of the window's rows (or values) it concerns


def quality_findings(reference: Mapping[str, ColumnReference],
                     current: Mapping[str, Any]) -> list[Finding]:  # fmt: skip
    """Every finding of the window ``current`` (a name to its values) against
    ``reference``, column by column in the reference's order, new columns last.

    Raises:
        InvalidInput: a column of no values, or of more than one dimension.
    """
    found: list[Finding] = []
    for name, ref in reference.items():
        if name not in current:
            found.append(Finding(name, "missing_column", f"{name}: the column is missing"))
            continue
        values = (as_categories(name, current[name]) if isinstance(ref, CategoricalReference)
                  else as_column(name, current[name]))  # fmt: skip
        found.extend(_column(name, ref, values))
    found.extend(Finding(str(name), "new_column",
                         f"{name}: a column the reference does not have")
                 for name in current if name not in reference)  # fmt: skip
    return found


def _column(name: str, ref: ColumnReference, values: Any) -> list[Finding]:
    if isinstance(ref, NumericReference) and not is_numeric(values):
        got = _DESCRIBED.get(values.dtype.kind, values.dtype.name)
        return [Finding(name, "type", f"{name}: numbers expected, got {got} values")]
    found = []
    missing = (~np.isfinite(values) if is_numeric(values) and isinstance(ref, NumericReference)
               else np.asarray(missing_mask(values)))  # fmt: skip
    before = ref.missing / max(ref.count + ref.missing, 1)
    now = float(missing.mean())
    if now - before >= MISSING_RISE:
        said = f"{name}: {now:.1%} of values missing, {before:.1%} in the reference"
        found.append(Finding(name, "missing_rate", said, now))
    present = values[~missing]
    if len(present) == 0:
        return found
    if isinstance(ref, NumericReference):
        numbers = present.astype(np.float64, copy=False)
        outside = float(((numbers < ref.minimum) | (numbers > ref.maximum)).mean())
        if outside > OUT_OF_RANGE:
            found.append(Finding(name, "out_of_range",
                                 f"{name}: {outside:.1%} of values outside the reference's "
                                 f"range [{ref.minimum:g}, {ref.maximum:g}]", outside))  # fmt: skip
        return found
    if OTHER not in ref.counts:  # else a category it does not name may be one of its rest
        found.extend(_unseen(name, ref, present))
    return found


def _unseen(name: str, ref: CategoricalReference, present: Any) -> list[Finding]:
    counts, _ = category_counts(present)
    new = [(c, n) for c, n in counts.items() if c not in ref.counts]
    share = sum(n for _, n in new) / len(present)
    if share <= UNSEEN:
        return []
    new.sort(key=lambda found: -found[1])
    named = ", ".join(repr(c) for c, _ in new[:_SHOWN]) + (" …" if len(new) > _SHOWN else "")
    said = f"{name}: {share:.1%} of values of categories the reference never saw ({named})"
    return [Finding(name, "unseen_category", said, share)]

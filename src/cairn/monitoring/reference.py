"""A reference: what each column of a model's training data looked like, kept small enough
to store with the model and computed once, never again per window.

Per numeric column: the count, the missing count, min, max, mean, standard deviation, and
the column's quantile function at ``QUANTILES + 1`` evenly spaced levels (its edges, with
the share of values at or below each). Per categorical column: the count of each category
(the ``TOP_CATEGORIES`` most frequent; the rest counted together). A window of current
data is then one vectorised pass per column against it (``cairn.monitoring.drift``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from cairn.errors import InvalidInput

REFERENCE_FORMAT = "cairn-reference/1"
QUANTILES = 1_000  # the quantile function at 1,001 levels: a CDF known to 0.1%
TOP_CATEGORIES = 100
OTHER = "\x00other"  # the categories past the top ones, counted together


@dataclass(frozen=True)
class NumericReference:
    count: int  # values present
    missing: int
    minimum: float
    maximum: float
    mean: float
    std: float
    edges: np.ndarray  # ascending, distinct: values of the quantile function
    cdf: np.ndarray  # the share of values at or below each edge (the last is 1)

    kind = "numeric"


@dataclass(frozen=True)
class CategoricalReference:
    count: int
    missing: int
    counts: Mapping[str, int]  # by category; OTHER: the rest

    kind = "categorical"


ColumnReference = NumericReference | CategoricalReference


def is_numeric(values: np.ndarray) -> bool:
    return values.dtype.kind in "biuf"


def reference_of(columns: Mapping[str, Any]) -> dict[str, ColumnReference]:
    """The reference of each column (a name to its values: a NumPy array, a pandas Series
    or a list); numbers and booleans are numeric, anything else categorical.

    Raises:
        InvalidInput: a column of no values, or of more than one dimension.
    """
    return {str(name): column_reference(str(name), values) for name, values in columns.items()}


def column_reference(name: str, values: Any) -> ColumnReference:
    """Raises:
    InvalidInput: no values, or more than one dimension.
    """
    categories = as_categories(name, values)
    if not isinstance(categories, np.ndarray):  # text, kept as pandas has it
        return _categorical(categories)
    if is_numeric(categories):
        return _numeric(name, categories.astype(np.float64, copy=False))
    return _categorical(categories)


def as_column(name: str, values: Any) -> np.ndarray:
    """``values`` as a one-dimensional array (booleans as 0 and 1).

    Raises:
        InvalidInput: no values, or more than one dimension.
    """
    array = np.asarray(values)
    if array.ndim != 1:
        raise InvalidInput(f"column {name!r}: expected one value per row, got shape "
                           f"{list(array.shape)}")  # fmt: skip
    if array.size == 0:
        raise InvalidInput(f"column {name!r}: no values")
    if array.dtype.kind == "b":
        return array.astype(np.int8)
    return array


def as_categories(name: str, values: Any) -> Any:
    """``values`` as a column of categories: a pandas Series of text as it is (turning an
    Arrow-backed text column into an array would make a Python string of every value),
    anything else as ``as_column`` makes it.

    Raises:
        InvalidInput: no values, or more than one dimension.
    """
    dtype = getattr(values, "dtype", None)
    if hasattr(values, "value_counts") and dtype is not None and dtype.kind not in "biufc":
        if len(values) == 0:
            raise InvalidInput(f"column {name!r}: no values")
        return values
    return as_column(name, values)


def _numeric(name: str, values: np.ndarray) -> NumericReference:
    present = np.sort(values[np.isfinite(values)])  # once: quantiles and counts read off it
    if present.size == 0:
        raise InvalidInput(f"column {name!r}: no finite values to compare with")
    levels = np.linspace(0.0, 1.0, QUANTILES + 1)
    # NumPy's default (linear) quantiles, read off the sorted values rather than found by
    # a partition for each of a thousand levels.
    at = levels * (present.size - 1)
    below = np.floor(at).astype(np.int64)
    above = np.minimum(below + 1, present.size - 1)
    quantiles = present[below] + (at - below) * (present[above] - present[below])
    edges = np.unique(quantiles)
    # The share at or below each distinct edge, counted, not read off the levels: a value
    # repeated over many rows is one edge holding all their mass.
    cdf = np.searchsorted(present, edges, side="right") / present.size
    return NumericReference(
        count=int(present.size), missing=int(values.size - present.size),
        minimum=float(edges[0]), maximum=float(edges[-1]), mean=float(present.mean()),
        std=float(present.std()), edges=edges, cdf=cdf,
    )  # fmt: skip


def _categorical(values: Any) -> CategoricalReference:
    counts, missing = category_counts(values)
    ranked = sorted(counts.items(), key=lambda found: (-found[1], found[0]))
    top = dict(ranked[:TOP_CATEGORIES])
    rest = sum(count for _, count in ranked[TOP_CATEGORIES:])
    if rest:
        top[OTHER] = rest
    return CategoricalReference(count=sum(counts.values()), missing=missing, counts=top)


def category_counts(values: Any) -> tuple[dict[str, int], int]:
    """How many values of each category (by its text: 1, 1.0 and "1" as ``str`` gives
    them), and how many are missing. Counted by pandas' hash table, not by sorting, and
    without turning a million values into a million strings first."""
    import pandas as pd

    series = pd.Series(values, copy=False)
    found = series.value_counts(dropna=True, sort=False)
    counts: dict[str, int] = {}
    for category, count in zip(found.index.tolist(), found.tolist(), strict=True):
        key = str(category)
        counts[key] = counts.get(key, 0) + int(count)
    return counts, int(series.size - sum(counts.values()))


def missing_mask(values: np.ndarray) -> np.ndarray:
    """Which values are missing: NaN, or None (or pandas' NA) in an array of objects."""
    if values.dtype.kind == "f":
        nan: np.ndarray = np.isnan(values)
        return nan
    if values.dtype.kind == "O":
        import pandas as pd

        found: np.ndarray = np.asarray(pd.isna(values), dtype=bool)
        return found
    return np.zeros(values.size, dtype=bool)


def to_json(reference: Mapping[str, ColumnReference]) -> dict[str, Any]:
    """The reference as JSON-ready values (``from_json`` reads it back)."""
    columns: dict[str, Any] = {}
    for name, found in reference.items():
        if isinstance(found, NumericReference):
            columns[name] = {
                "kind": "numeric", "count": found.count, "missing": found.missing,
                "min": found.minimum, "max": found.maximum, "mean": found.mean,
                "std": found.std, "edges": found.edges.tolist(), "cdf": found.cdf.tolist(),
            }  # fmt: skip
        else:
            columns[name] = {"kind": "categorical", "count": found.count,
                             "missing": found.missing, "counts": dict(found.counts)}  # fmt: skip
    return {"format": REFERENCE_FORMAT, "columns": columns}


def from_json(document: Any) -> dict[str, ColumnReference]:
    """A reference read back: a stored document is checked before it is used.

    Raises:
        InvalidInput: not a reference of this format (naming the first problem).
    """
    if not isinstance(document, dict) or document.get("format") != REFERENCE_FORMAT:
        raise InvalidInput(f"reference: expected a {REFERENCE_FORMAT!r} document")
    columns = document.get("columns")
    if not isinstance(columns, dict):
        raise InvalidInput("reference: 'columns' must be an object")
    return {str(name): _column_from_json(str(name), found) for name, found in columns.items()}


def _column_from_json(name: str, found: Any) -> ColumnReference:
    where = f"reference column {name!r}"
    if not isinstance(found, dict):
        raise InvalidInput(f"{where}: expected an object")
    count, missing = _count(found.get("count")), _count(found.get("missing"))
    if count is None or missing is None:
        raise InvalidInput(f"{where}: 'count' and 'missing' must be counts")
    if found.get("kind") == "categorical":
        counts = found.get("counts")
        if not isinstance(counts, dict) or any(_count(v) is None for v in counts.values()):
            raise InvalidInput(f"{where}: 'counts' must map categories to counts")
        return CategoricalReference(count, missing, {str(k): v for k, v in counts.items()})
    if found.get("kind") != "numeric":
        raise InvalidInput(f"{where}: 'kind' must be 'numeric' or 'categorical'")
    try:
        edges = np.asarray(found.get("edges"), dtype=np.float64)
        cdf = np.asarray(found.get("cdf"), dtype=np.float64)
        stats = [float(found[k]) for k in ("min", "max", "mean", "std")]
    except (TypeError, ValueError, KeyError) as exc:
        raise InvalidInput(f"{where}: {exc}") from None
    if (edges.ndim != 1 or edges.size == 0 or edges.shape != cdf.shape
            or not np.all(np.isfinite(edges)) or not np.all(np.isfinite(cdf))
            or np.any(np.diff(edges) <= 0)
            or np.any(np.diff(cdf) < 0) or not 0 <= cdf[0] <= cdf[-1] <= 1
            or not all(math.isfinite(s) for s in stats) or stats[3] < 0):  # fmt: skip
        raise InvalidInput(f"{where}: edges must ascend with a share at or below each, "
                           "and min, max, mean and std be finite")  # fmt: skip
    minimum, maximum, mean, std = stats
    return NumericReference(count, missing, minimum, maximum, mean, std, edges, cdf)


def _count(value: Any) -> int | None:
    """``value`` if it is a count (a whole number, not negative, not a boolean)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None

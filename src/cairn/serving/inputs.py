"""A request's values as the model takes them, shaped by its signature's inputs
(``cairn.models.signature``): one array for a tensor, a dict of arrays for named tensors,
a table (a pandas DataFrame) for columns. The loaded model then checks them against the
signature, so a wrong column, dtype or shape is a 400 naming it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from cairn.errors import InvalidInput


def from_tensors(spec: Mapping[str, Any] | None, named: dict[str, np.ndarray]) -> Any:
    """Named arrays (an inference request's inputs) as the model takes them.

    Raises:
        InvalidInput: several arrays for a model of one tensor; a column of another shape
            than a list of values.
    """
    kind = None if spec is None else spec["type"]
    if kind == "columns":
        for name, values in named.items():
            if values.ndim > 2 or (values.ndim == 2 and values.shape[1] != 1):
                raise InvalidInput(f"inputs[{name!r}]: a column is [n] or [n, 1] values, "
                                   f"got shape {list(values.shape)}")  # fmt: skip
        return table({name: values.reshape(-1) for name, values in named.items()})
    if kind == "tensors" or (kind is None and len(named) > 1):
        return named
    if len(named) != 1:
        raise InvalidInput(f"inputs: the model takes one tensor, got {len(named)}")
    return next(iter(named.values()))


def table(columns: Any, names: list[str] | None = None) -> Any:
    """A pandas DataFrame of ``columns`` (a mapping of name to values, or rows with
    ``names``)."""
    import pandas as pd

    try:
        return pd.DataFrame(columns, columns=names)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"expected a table: {exc}") from None

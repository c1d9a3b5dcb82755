"""A window of logged traffic (``cairn.serving.payloads.read_window``) as columns, the
shape drift and quality checks take: a table's inputs by column name, a tensor's by
feature position (``"0"``, ``"1"`` …), named tensors by name (a tensor of several features
as ``name[0]``, ``name[1]`` …), and the answers as ``prediction`` (or ``prediction[0]`` …
for several outputs per row), and the request each row came in as ``request_id``. A row
missing a column has None there."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from cairn.errors import InvalidInput

PREDICTION = "prediction"
REQUEST_ID = "request_id"  # of each row: which request asked it (where its label is found)


class _Columns:
    def __init__(self) -> None:
        self.values: dict[str, list[Any]] = {}
        self.rows = 0

    def add(self, rows: list[dict[str, Any]]) -> None:
        for name in {key for row in rows for key in row}:
            column = self.values.get(name)
            if column is None:  # a column first seen now: missing in the rows before
                column = self.values[name] = [None] * self.rows
            column.extend(row.get(name) for row in rows)
        for column in self.values.values():  # columns these rows lack
            column.extend([None] * (self.rows + len(rows) - len(column)))
        self.rows += len(rows)

    def arrays(self) -> dict[str, np.ndarray]:
        found = {}
        for name in sorted(self.values, key=order):
            column = self.values[name]
            if all(v is None or isinstance(v, int | float) for v in column):
                found[name] = np.array([np.nan if v is None else v for v in column], dtype=float)
            else:
                found[name] = np.array(column, dtype=object)
        return found


def window_columns(logged: Iterable[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """The inputs and answers of logged requests, as columns of one row per row asked.

    Raises:
        InvalidInput: a logged request's inputs or answers of no shape a model is asked or
            answers in, or answers not one per row (naming the request).
    """
    logged = list(logged)
    fast = _tensor_rows(logged)
    if fast is not None:
        return fast
    inputs, outputs = _Columns(), _Columns()
    request_ids: list[str] = []
    for request in logged:
        where = f"logged request {request.get('request_id')!r}"
        asked = _rows(request.get("inputs"), "", f"{where}: inputs")
        answered = _rows(request.get("outputs"), PREDICTION, f"{where}: outputs")
        if len(answered) != len(asked):
            raise InvalidInput(f"{where}: {len(answered)} answers to {len(asked)} rows")
        inputs.add(asked)
        outputs.add(answered)
        request_ids.extend([str(request.get("request_id"))] * len(asked))
    return {**inputs.arrays(), **outputs.arrays(),
            REQUEST_ID: np.array(request_ids, dtype=object)}  # fmt: skip


def _tensor_rows(logged: list[Mapping[str, Any]]) -> dict[str, np.ndarray] | None:
    """The common window, in one pass of NumPy: every request rows of numbers of one width
    (a tensor model's), answered with one number a row. None for any other window, which
    the general path reads (and names what is wrong in it)."""
    asked: list[Any] = []
    answered: list[Any] = []
    ids: list[str] = []
    for request in logged:
        inputs, outputs = request.get("inputs"), request.get("outputs")
        if not (isinstance(inputs, list) and isinstance(outputs, list)
                and len(inputs) == len(outputs) and inputs
                and isinstance(inputs[0], list)):  # fmt: skip
            return None
        asked.extend(inputs)
        answered.extend(outputs)
        ids.extend([str(request.get("request_id"))] * len(inputs))
    if not asked:
        return None
    matrix, predictions = _numbers(asked), _numbers(answered)
    if matrix is None or predictions is None or matrix.ndim != 2 or predictions.ndim != 1:
        return None  # ragged rows, text, lists in a value or an answer: not this shape
    found = {str(i): matrix[:, i].copy() for i in range(matrix.shape[1])}
    return {**found, PREDICTION: predictions, REQUEST_ID: np.array(ids, dtype=object)}


def _numbers(values: list[Any]) -> np.ndarray | None:
    """``values`` as floats (None as NaN) if they are numbers and missing values only:
    text that reads as a number stays text, as the general path keeps it."""
    try:
        found = np.array(values)
    except ValueError:  # ragged
        return None
    if found.dtype.kind == "O":  # numbers with None among them, or worse
        flat = found.ravel()
        if not all(v is None or isinstance(v, int | float) for v in flat):
            return None
    elif found.dtype.kind not in "biuf":
        return None
    return found.astype(float)


def _rows(value: Any, name: str, where: str) -> list[dict[str, Any]]:
    """One dict per row: records as they are; a tensor's rows by position; named tensors
    by name."""
    if isinstance(value, dict):  # named tensors, or a table's columns
        named = [_rows(values, str(key), f"{where}[{key!r}]") for key, values in value.items()]
        if len({len(rows) for rows in named}) > 1:
            raise InvalidInput(f"{where}: its tensors have different numbers of rows")
        return [
            {k: v for row in together for k, v in row.items()}
            for together in zip(*named, strict=True)
        ]
    if not isinstance(value, list):
        raise InvalidInput(f"{where}: expected a list of rows, got {type(value).__name__}")
    if all(isinstance(row, dict) for row in value):
        return [{str(k): _scalar(v, where) for k, v in row.items()} for row in value]
    rows = []
    for row in value:
        if isinstance(row, list):
            prefix = f"{name}[{{}}]" if name else "{}"
            rows.append({prefix.format(i): _scalar(v, where) for i, v in enumerate(row)})
        else:
            rows.append({name or "0": _scalar(row, where)})
    return rows


def _scalar(value: Any, where: str) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise InvalidInput(f"{where}: expected a number or a text per value, got "
                       f"{type(value).__name__}")  # fmt: skip


def order(name: str) -> tuple[str, int]:
    """Feature positions in their order (2 before 10), names as they are."""
    head, _, index = name.rpartition("[")
    if index.endswith("]") and index[:-1].isdigit():
        return head, int(index[:-1])
    return ("", int(name)) if name.isdigit() else (name, -1)

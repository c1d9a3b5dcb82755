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
            column = self.values.setdefault(name, [None] * self.rows)
            column.extend(row.get(name) for row in rows)
        for column in self.values.values():  # columns these rows lack
            column.extend([None] * (self.rows + len(rows) - len(column)))
        self.rows += len(rows)

    def arrays(self) -> dict[str, np.ndarray]:
        found = {}
        for name in sorted(self.values, key=_order):
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


def _order(name: str) -> tuple[str, int]:
    """Feature positions in their order (2 before 10), names as they are."""
    head, _, index = name.rpartition("[")
    if index.endswith("]") and index[:-1].isdigit():
        return head, int(index[:-1])
    return ("", int(name)) if name.isdigit() else (name, -1)

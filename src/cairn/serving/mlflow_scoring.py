"""MLflow's scoring protocol (``POST /invocations``): a JSON object with one of
``dataframe_split`` (``{"columns": [...], "data": [[...]]}``), ``dataframe_records``
(``[{column: value}]``), ``instances`` (rows) or ``inputs`` (rows, or named tensors),
answered with ``{"predictions": ...}``.

A table is made for a model whose signature has columns; a model of tensors takes the
values as an array (a frame's columns in the order they are sent).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cairn.errors import InvalidInput
from cairn.serving.inputs import table
from cairn.serving.tensors import as_list, rows

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")


def model_input(spec: Mapping[str, Any] | None, body: Any) -> Any:
    """The values of a scoring request as the model takes them.

    Raises:
        InvalidInput: the body is no object holding exactly one of the formats, or the
            format's value is not of its shape (naming it).
    """
    if not isinstance(body, dict):
        raise InvalidInput(f"request body: expected a JSON object with one of {', '.join(FORMATS)}")
    given = [key for key in FORMATS if key in body]
    extra = sorted(set(body) - {*FORMATS, "params"})
    if len(given) != 1 or extra:
        raise InvalidInput(
            f"request body: expected exactly one of {', '.join(FORMATS)}"
            + (f"; unknown field {extra[0]!r}" if extra else f", got {len(given)}")
        )
    kind, value = given[0], body[given[0]]
    columns = spec is not None and spec["type"] == "columns"
    # A table sent to a model with no signature stays a table, as MLflow's scoring server
    # passes it: a model fitted on named columns is asked by their names, and its traffic
    # is logged by them (what a monitor's reference names).
    named = columns or spec is None
    if kind == "dataframe_split":
        return _split(value, columns, named)
    if kind == "dataframe_records":
        if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
            raise InvalidInput("dataframe_records: expected a list of objects (one a row)")
        frame = table(value)
        return frame if named else rows(frame.to_numpy().tolist(), kind)
    if isinstance(value, dict):  # named tensors, or a table's columns
        if columns:
            return table(value)
        return {str(name): rows(values, f"{kind}[{name!r}]") for name, values in value.items()}
    if not isinstance(value, list):
        raise InvalidInput(f"{kind}: expected a list of rows")
    if columns and value and all(isinstance(r, dict) for r in value):
        return table(value)
    return rows(value, kind)


def _split(value: Any, columns: bool, named: bool) -> Any:
    if not isinstance(value, dict) or not isinstance(value.get("data"), list):
        raise InvalidInput('dataframe_split: expected {"columns": [...], "data": [[...]]}')
    names = value.get("columns")
    if names is not None and (not isinstance(names, list)
                              or not all(isinstance(n, str) for n in names)):  # fmt: skip
        raise InvalidInput("dataframe_split.columns: expected a list of column names")
    if columns or (named and names is not None):
        return table(value["data"], names)
    return rows(value["data"], "dataframe_split.data")


def answer(predictions: Any) -> dict[str, Any]:
    """The scoring protocol's answer."""
    if isinstance(predictions, Mapping):
        return {"predictions": {str(k): as_list(v) for k, v in predictions.items()}}
    return {"predictions": as_list(predictions)}

"""Arrays as the Open Inference Protocol writes them: a datatype name, a shape and the
values flat, in row-major order."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from cairn.errors import InvalidInput

# The protocol's datatypes and the NumPy dtypes they are.
DATATYPES = {
    "BOOL": "bool", "UINT8": "uint8", "UINT16": "uint16", "UINT32": "uint32",
    "UINT64": "uint64", "INT8": "int8", "INT16": "int16", "INT32": "int32", "INT64": "int64",
    "FP16": "float16", "FP32": "float32", "FP64": "float64", "BYTES": "object",
}  # fmt: skip
_NAMES = {dtype: name for name, dtype in DATATYPES.items()}


def datatype_of(dtype: Any) -> str:
    """The protocol's name of a NumPy dtype (text and objects: BYTES)."""
    return _NAMES.get(np.dtype(dtype).name, "BYTES")


def array(data: Any, shape: Any, datatype: Any, field: str) -> np.ndarray:
    """The array a tensor of the request holds.

    Raises:
        InvalidInput: naming ``field``: an unknown datatype, a shape that is not a list
            of sizes, data that is not a list of values of the datatype, or as many
            values as the shape holds.
    """
    if datatype not in DATATYPES:
        raise InvalidInput(f"{field}.datatype: expected one of {', '.join(DATATYPES)}, "
                           f"got {datatype!r}")  # fmt: skip
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise InvalidInput(f"{field}.shape: expected a list of sizes (whole numbers ≥ 0)")
    values = _flat(data, field)
    if len(values) != math.prod(shape):
        raise InvalidInput(
            f"{field}.data: {len(values)} values, but shape {shape} holds {math.prod(shape)}"
        )
    try:
        found = np.asarray(values, dtype=DATATYPES[datatype])
    except (TypeError, ValueError, OverflowError):
        raise InvalidInput(f"{field}.data: expected values of datatype {datatype}") from None
    return found.reshape(shape)


def _flat(data: Any, field: str) -> list[Any]:
    """The values of ``data``, flat (the protocol allows them nested, row-major)."""
    if not isinstance(data, list):
        raise InvalidInput(f"{field}.data: expected a list of values")
    if not any(isinstance(item, list) for item in data):
        return data
    found: list[Any] = []
    for item in data:
        found.extend(_flat(item, field) if isinstance(item, list) else [item])
    return found


def rows(data: Any, field: str) -> np.ndarray:
    """A list of rows (or of values) as one array.

    Raises:
        InvalidInput: rows of different lengths, or values that are no numbers or text.
    """
    try:
        found = np.asarray(data)
    except (TypeError, ValueError):
        raise InvalidInput(f"{field}: expected rows of equal length") from None
    if found.dtype == object:
        raise InvalidInput(f"{field}: expected rows of equal length, of numbers or text")
    return found


def as_list(value: Any) -> Any:
    """A model's output as plain JSON values (a NumPy array, a pandas Series or frame, a
    list)."""
    to_numpy = getattr(value, "to_numpy", None)
    if to_numpy is not None:
        value = to_numpy()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [as_list(item) for item in value]
    return value

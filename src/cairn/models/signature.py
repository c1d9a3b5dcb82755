"""A model's signature: what its input and output look like, inferred from an example.

Two shapes, as a model takes them:

- columns, for tables (a pandas DataFrame): each column's name and type;
- a tensor, for arrays (NumPy, PyTorch, a list of rows): its dtype and shape, the first
  dimension (the batch) written -1; several named tensors for a dict of arrays.

The signature is part of the package's manifest. An input is checked against it before a
loaded model sees it: a missing column, an unknown dtype kind or a wrong trailing shape is
an error that names it, not a traceback from deep inside the model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cairn.errors import InvalidInput

Signature = dict[str, Any]  # {"inputs": <spec>, "outputs": <spec>}; a spec as below


def infer(value: Any) -> dict[str, Any]:
    """The spec of one input or output value.

    Raises:
        InvalidInput: the value is none of a table, an array, a tensor or a dict of them.
    """
    columns = getattr(value, "columns", None)
    dtypes = getattr(value, "dtypes", None)
    if columns is not None and dtypes is not None:  # a pandas DataFrame
        return {
            "type": "columns",
            "columns": [
                {"name": str(n), "type": str(t)} for n, t in zip(columns, dtypes, strict=True)
            ],
        }
    if isinstance(value, Mapping):
        return {"type": "tensors", "tensors": {str(k): _tensor(v) for k, v in value.items()}}
    return _tensor(value)


def _tensor(value: Any) -> dict[str, Any]:
    shape, dtype = getattr(value, "shape", None), getattr(value, "dtype", None)
    if shape is None or dtype is None:
        import numpy as np

        try:
            array = np.asarray(value)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(
                f"input_example: expected a DataFrame, an array, a tensor or a dict of them, "
                f"got {type(value).__name__} ({exc})"
            ) from None
        if array.dtype == object:
            raise InvalidInput(
                f"input_example: {type(value).__name__} of mixed or non-numeric values; "
                "pass a DataFrame or an array"
            )
        shape, dtype = array.shape, array.dtype
    dims = [int(d) for d in shape]
    return {"type": "tensor", "dtype": str(dtype).removeprefix("torch."), "shape": [-1, *dims[1:]]}


def check(spec: Mapping[str, Any], value: Any, what: str = "input") -> None:
    """Raises:
    InvalidInput: ``value`` does not fit ``spec`` (naming the column or dimension).
    """
    found = infer(value)
    if spec["type"] == "columns":
        if found["type"] != "columns":
            raise InvalidInput(f"{what}: expected a table with columns {_names(spec)}")
        present = {c["name"]: c["type"] for c in found["columns"]}
        missing = [c["name"] for c in spec["columns"] if c["name"] not in present]
        if missing:
            raise InvalidInput(f"{what}: missing column(s) {', '.join(missing)}")
        for column in spec["columns"]:
            if not _compatible(column["type"], present[column["name"]]):
                raise InvalidInput(
                    f"{what}: column {column['name']} is {present[column['name']]}, "
                    f"expected {column['type']}"
                )
        return
    if spec["type"] == "tensors":
        if found["type"] != "tensors":
            raise InvalidInput(f"{what}: expected a dict of {', '.join(spec['tensors'])}")
        for name, tensor in spec["tensors"].items():
            if name not in found["tensors"]:
                raise InvalidInput(f"{what}: missing tensor {name!r}")
            _check_tensor(tensor, found["tensors"][name], f"{what}[{name!r}]")
        return
    if found["type"] != "tensor":
        raise InvalidInput(f"{what}: expected an array of shape {spec['shape']}")
    _check_tensor(spec, found, what)


def _check_tensor(spec: Mapping[str, Any], found: Mapping[str, Any], what: str) -> None:
    expected, got = spec["shape"], found["shape"]
    if len(expected) != len(got) or any(
        e != -1 and e != g for e, g in zip(expected[1:], got[1:], strict=True)
    ):
        raise InvalidInput(f"{what}: shape {got}, expected {expected} (-1: any size)")
    if not _compatible(spec["dtype"], found["dtype"]):
        raise InvalidInput(f"{what}: dtype {found['dtype']}, expected {spec['dtype']}")


def _compatible(expected: str, got: str) -> bool:
    """Same kind of number (a float32 where float64 was seen is fine; a string is not),
    or whole numbers where floats were seen."""
    return _kind(expected) == _kind(got) or (_kind(expected), _kind(got)) == ("float", "int")


def _kind(dtype: str) -> str:
    for kind in ("bool", "complex", "float", "int", "datetime", "timedelta"):
        if dtype.startswith((kind, f"u{kind}")):
            return "int" if kind == "int" else kind
    return "other"


def _names(spec: Mapping[str, Any]) -> str:
    return ", ".join(c["name"] for c in spec["columns"])

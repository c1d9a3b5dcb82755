"""The Open Inference Protocol v2 (KServe's, MLServer's, Triton's REST shape): an
inference request names its input tensors (``name``, ``shape``, ``datatype``, ``data``),
the answer its outputs the same way, with the model's name and version; a model's
metadata lists its inputs and outputs from its signature."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from cairn.errors import InvalidInput
from cairn.serving.inputs import from_tensors
from cairn.serving.tensors import array, datatype_of

_REQUEST_FIELDS = {"id", "parameters", "inputs", "outputs"}
_INPUT_FIELDS = {"name", "shape", "datatype", "data", "parameters"}


def model_input(spec: Mapping[str, Any] | None, body: Any) -> tuple[Any, str | None]:
    """The request's tensors as the model takes them, and the request's ``id``.

    Raises:
        InvalidInput: naming the field that is not as the protocol says.
    """
    if not isinstance(body, dict):
        raise InvalidInput("request body: expected a JSON object with 'inputs'")
    unknown = sorted(set(body) - _REQUEST_FIELDS)
    if unknown:
        raise InvalidInput(
            f"{unknown[0]}: unknown field; expected {', '.join(sorted(_REQUEST_FIELDS))}"
        )
    inputs, request_id = body.get("inputs"), body.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidInput("id: expected a string")
    if not isinstance(inputs, list) or not inputs:
        raise InvalidInput("inputs: expected a list of one or more tensors")
    named: dict[str, np.ndarray] = {}
    for index, tensor in enumerate(inputs):
        field = f"inputs[{index}]"
        if not isinstance(tensor, dict):
            raise InvalidInput(f"{field}: expected an object (name, shape, datatype, data)")
        unknown = sorted(set(tensor) - _INPUT_FIELDS)
        if unknown:
            raise InvalidInput(f"{field}.{unknown[0]}: unknown field")
        name = tensor.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidInput(f"{field}.name: expected a name")
        if name in named:
            raise InvalidInput(f"{field}.name: {name!r} is given twice")
        named[name] = array(tensor.get("data"), tensor.get("shape"), tensor.get("datatype"),
                            field)  # fmt: skip
    return from_tensors(spec, named), request_id


def answer(name: str, version: str, predictions: Any, request_id: str | None) -> dict[str, Any]:
    """The inference answer: each output tensor flat, with its shape and datatype (a dict
    of outputs: one tensor each; anything else: one named ``predict``)."""
    outputs = (
        predictions.items() if isinstance(predictions, Mapping) else [("predict", predictions)]
    )
    found: dict[str, Any] = {"model_name": name, "model_version": version,
                             "outputs": [_tensor(str(n), v) for n, v in outputs]}  # fmt: skip
    if request_id is not None:
        found["id"] = request_id
    return found


def _tensor(name: str, value: Any) -> dict[str, Any]:
    to_numpy = getattr(value, "to_numpy", None)
    values = np.asarray(to_numpy() if to_numpy is not None else value)
    datatype = datatype_of(values.dtype)
    flat = values.ravel()
    data = [str(v) for v in flat] if datatype == "BYTES" else flat.tolist()
    return {"name": name, "shape": list(values.shape), "datatype": datatype, "data": data}


def metadata(name: str, version: str, platform: str, signature: Mapping[str, Any] | None
             ) -> dict[str, Any]:  # fmt: skip
    """A model's metadata: its inputs and outputs as tensors, from its signature."""
    inputs = _tensors(signature["inputs"]) if signature else []
    outputs = _tensors(signature.get("outputs")) if signature else []
    return {"name": name, "versions": [version], "platform": platform,
            "inputs": inputs, "outputs": outputs}  # fmt: skip


def _tensors(spec: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    if spec is None:
        return []
    if spec["type"] == "columns":
        return [{"name": c["name"], "datatype": _datatype(c["type"]), "shape": [-1]}
                for c in spec["columns"]]  # fmt: skip
    if spec["type"] == "tensors":
        return [{"name": n, "datatype": _datatype(t["dtype"]), "shape": t["shape"]}
                for n, t in spec["tensors"].items()]  # fmt: skip
    return [{"name": "input", "datatype": _datatype(spec["dtype"]), "shape": spec["shape"]}]


def _datatype(dtype: str) -> str:
    try:
        return datatype_of(dtype)
    except TypeError:  # a dtype NumPy does not know (a pandas "object", "category" …)
        return "BYTES"

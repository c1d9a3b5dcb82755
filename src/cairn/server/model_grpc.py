"""The model server's gRPC face: the Open Inference Protocol v2's ``GRPCInferenceService``
(``ServerLive``, ``ServerReady``, ``ModelReady``, ``ServerMetadata``, ``ModelMetadata``,
``ModelInfer``) over the same served models as the REST routes, with the same checks.

A tensor arrives in its typed contents (``fp64_contents`` …) or as raw little-endian bytes
(``raw_input_contents``); bad input is ``INVALID_ARGUMENT`` with the message naming the
field, an unknown model ``NOT_FOUND``, a model that raises ``INTERNAL`` with the request id
only. The answering version is in the response (``model_version``) and in the initial
metadata (``x-model-version``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import numpy as np

from cairn._version import __version__
from cairn.errors import InvalidInput
from cairn.serving import oip
from cairn.serving.grpc_v2 import inference_pb2 as pb
from cairn.serving.grpc_v2 import inference_pb2_grpc as rpc
from cairn.serving.inputs import from_tensors
from cairn.serving.metrics import ServingMetrics
from cairn.serving.payloads import PayloadLog
from cairn.serving.served import ServedModel, ServedModels
from cairn.serving.tensors import DATATYPES, array
from cairn.serving.traffic import request_id as request_id_of

logger = logging.getLogger(__name__)
GRPC = "grpc"

# Where each datatype's values travel in InferTensorContents (FP16 travels raw only).
_CONTENTS = {
    "BOOL": "bool_contents", "INT8": "int_contents", "INT16": "int_contents",
    "INT32": "int_contents", "INT64": "int64_contents", "UINT8": "uint_contents",
    "UINT16": "uint_contents", "UINT32": "uint_contents", "UINT64": "uint64_contents",
    "FP32": "fp32_contents", "FP64": "fp64_contents", "BYTES": "bytes_contents",
}  # fmt: skip


class _Inference(rpc.GRPCInferenceServiceServicer):
    def __init__(self, served: Mapping[str, ServedModel], metrics: ServingMetrics,
                 payloads: PayloadLog | None) -> None:  # fmt: skip
        self.served, self.metrics, self.payloads = served, metrics, payloads
        self.traffic = served.traffic if isinstance(served, ServedModels) else None

    def ServerLive(self, request: Any, context: Any) -> Any:  # noqa: N802  # the protocol's
        return pb.ServerLiveResponse(live=True)

    def ServerReady(self, request: Any, context: Any) -> Any:  # noqa: N802
        return pb.ServerReadyResponse(ready=True)

    def ServerMetadata(self, request: Any, context: Any) -> Any:  # noqa: N802
        return pb.ServerMetadataResponse(name="cairn", version=__version__, extensions=[])

    def ModelReady(self, request: Any, context: Any) -> Any:  # noqa: N802
        self._model(request.name, context)
        return pb.ModelReadyResponse(ready=True)

    def ModelMetadata(self, request: Any, context: Any) -> Any:  # noqa: N802
        found = self._model(request.name, context)
        meta = oip.metadata(found.name, found.version, found.platform, found.signature)
        tensors = pb.ModelMetadataResponse.TensorMetadata
        return pb.ModelMetadataResponse(
            name=meta["name"], versions=meta["versions"], platform=meta["platform"],
            inputs=[tensors(**t) for t in meta["inputs"]],
            outputs=[tensors(**t) for t in meta["outputs"]],
        )  # fmt: skip

    def ModelInfer(self, request: Any, context: Any) -> Any:  # noqa: N802
        try:
            request_id = request_id_of(request.id, "id")
        except InvalidInput as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, exc.message)
        served = self._model(request.model_name, context)
        if self.traffic is not None:
            served = self.traffic.route(served, request_id)
        context.send_initial_metadata((("x-model-version", served.ref),
                                       ("x-request-id", request_id)))  # fmt: skip
        started, status = time.perf_counter(), "OK"
        try:
            data = from_tensors(served.inputs, _inputs(request))
            served.check(data)
            predictions = served.predict(data)
        except InvalidInput as exc:
            status = "INVALID_ARGUMENT"
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, exc.message)
        except Exception:  # the model's own failure: logged, never shown
            logger.exception("model %s failed on request %s", served.ref, request_id)
            status = "INTERNAL"
            context.abort(grpc.StatusCode.INTERNAL,
                          f"the model failed on this request (request id {request_id}; "
                          "see the server's log)")  # fmt: skip
        finally:
            self.metrics.answered(served.name, served.version, GRPC, status,
                                  time.perf_counter() - started)  # fmt: skip
        if self.payloads is not None:
            self.payloads.record(served.name, served.model.version.version, request_id, data,
                                 predictions)  # fmt: skip
        answer = oip.answer(served.name, served.version, predictions, request.id or None)
        return pb.ModelInferResponse(
            model_name=answer["model_name"], model_version=answer["model_version"],
            id=request.id, outputs=[_output(o) for o in answer["outputs"]],
        )  # fmt: skip

    def _model(self, name: str, context: Any) -> ServedModel:
        found = self.served.get(name)
        if found is None:
            known = ", ".join(sorted(self.served))
            context.abort(grpc.StatusCode.NOT_FOUND,
                          f"model {name!r} is not served here (served: {known})")  # fmt: skip
        return found  # type: ignore[return-value]  # abort raised otherwise


def _inputs(request: Any) -> dict[str, np.ndarray]:
    """The request's tensors by name, from their contents or their raw bytes.

    Raises:
        InvalidInput: naming the tensor that is not as the protocol says.
    """
    raw = list(request.raw_input_contents)
    if raw and len(raw) != len(request.inputs):
        raise InvalidInput(f"raw_input_contents: {len(raw)} given for {len(request.inputs)} "
                           "inputs; each input's bytes, in order")  # fmt: skip
    if not request.inputs:
        raise InvalidInput("inputs: expected one or more tensors")
    named: dict[str, np.ndarray] = {}
    for index, tensor in enumerate(request.inputs):
        field = f"inputs[{index}]"
        if tensor.name in named or not tensor.name:
            raise InvalidInput(f"{field}.name: expected a name given once, got {tensor.name!r}")
        shape = [int(d) for d in tensor.shape]
        if raw:
            named[tensor.name] = _raw(raw[index], shape, tensor.datatype, field)
        else:
            where = _CONTENTS.get(tensor.datatype)
            values = list(getattr(tensor.contents, where)) if where else []
            if tensor.datatype == "BYTES":
                values = [v.decode("utf-8", "replace") for v in values]
            named[tensor.name] = array(values, shape, tensor.datatype, field)
    return named


def _raw(data: bytes, shape: list[int], datatype: str, field: str) -> np.ndarray:
    if datatype not in DATATYPES or datatype == "BYTES":
        raise InvalidInput(f"{field}.datatype: raw contents of {datatype!r} are not taken "
                           "(a number type, or BYTES in bytes_contents)")  # fmt: skip
    dtype = np.dtype(DATATYPES[datatype]).newbyteorder("<")
    if len(data) != int(np.prod(shape)) * dtype.itemsize or any(d < 0 for d in shape):
        raise InvalidInput(f"{field}: {len(data)} raw bytes do not hold shape {shape} of "
                           f"{datatype}")  # fmt: skip
    return np.frombuffer(data, dtype).reshape(shape)


def _output(tensor: Mapping[str, Any]) -> Any:
    datatype, data = tensor["datatype"], tensor["data"]
    if datatype == "FP16":  # contents have no 16-bit floats
        datatype = "FP32"
    values: list[Any] = [str(v).encode() for v in data] if datatype == "BYTES" else data
    contents = pb.InferTensorContents(**{_CONTENTS[datatype]: values})
    return pb.ModelInferResponse.InferOutputTensor(
        name=tensor["name"], datatype=datatype, shape=tensor["shape"], contents=contents
    )


def start_grpc(
    served: Mapping[str, ServedModel],
    host: str,
    port: int,
    metrics: ServingMetrics,
    payloads: PayloadLog | None = None,
) -> Any:
    """A started gRPC server answering for ``served`` (``stop(grace)`` it when done)."""
    server = grpc.server(ThreadPoolExecutor(max_workers=16, thread_name_prefix="cairn-grpc"))
    add = rpc.add_GRPCInferenceServiceServicer_to_server  # generated, untyped
    add(_Inference(served, metrics, payloads), server)  # type: ignore[no-untyped-call]
    if server.add_insecure_port(f"{host}:{port}") == 0:
        raise InvalidInput(f"--grpc-port {port}: cannot listen there")
    server.start()
    return server

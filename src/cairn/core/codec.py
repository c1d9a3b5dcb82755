"""Domain values to JSON-ready dicts and back: the one wire shape of the REST API and --json.

JSON has no NaN or infinity, and metric values may be either, so a non-finite float is
written as the string ``"NaN"``, ``"Infinity"`` or ``"-Infinity"`` and read back as the float.

A metric series' columns are JSON arrays, or, where volume matters (the SDK's ingest),
packed: a base64 string of the column's little-endian 8-byte numbers
(``cairn.core.packing``), which carries NaN and ±inf as they are and costs the sender and
the server a memory copy instead of a number-by-number conversion.
"""

from __future__ import annotations

import math
from array import array
from base64 import b64decode, b64encode
from collections.abc import Mapping, Sequence
from typing import Any

from cairn.core.artifact import ArtifactEntry, ObjectInfo
from cairn.core.identity import DEFAULT_PROJECT
from cairn.core.limits import check_key
from cairn.core.packing import ITEM_SIZE, pack, unpack_floats, unpack_ints
from cairn.core.run import (
    LIFECYCLES,
    RUN_STATUSES,
    Experiment,
    Lifecycle,
    Metric,
    MetricBatch,
    MetricPoint,
    MetricSeries,
    NewRun,
    Run,
    RunRecord,
    as_batch,
    metric_from_point,
)
from cairn.core.search import RunQuery
from cairn.errors import InvalidInput

_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def encode_float(value: float) -> float | str:
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def decode_float(value: object, field: str) -> float:
    if isinstance(value, str):
        if value in _NON_FINITE:
            return _NON_FINITE[value]
    elif isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise InvalidInput(f"{field}: expected a number, 'NaN', 'Infinity' or '-Infinity'")


def experiment_to_dict(experiment: Experiment) -> dict[str, Any]:
    return {
        "id": experiment.id,
        "name": experiment.name,
        "created_at": experiment.created_at,
        "lifecycle": experiment.lifecycle.value,
        "project": experiment.project,
    }


def experiment_from_dict(data: Mapping[str, Any]) -> Experiment:
    return Experiment(
        data["id"],
        data["name"],
        data["created_at"],
        Lifecycle(data["lifecycle"]),
        data.get("project", DEFAULT_PROJECT),
    )


def metric_to_dict(metric: Metric) -> dict[str, Any]:
    return {
        "key": metric.key,
        "value": encode_float(metric.value),
        "step": metric.step,
        "timestamp": metric.timestamp,
    }


def metric_from_dict(key: str, data: Mapping[str, Any]) -> Metric:
    # A search returns thousands of these: the common case (a finite float) is inlined.
    value = data["value"]
    if type(value) is not float:
        value = decode_float(value, f"metrics[{key!r}]")
    return metric_from_point((key, value, data["step"], data["timestamp"]))


def new_run_to_dict(new: NewRun) -> dict[str, Any]:
    return {
        "experiment_id": new.experiment_id,
        "name": new.name,
        "start_time": new.start_time,
        "user": new.user,
        "parent_id": new.parent_id,
        "git_commit": new.git_commit,
        "source": new.source,
        "tags": dict(new.tags),
    }


def run_record_to_dict(record: RunRecord) -> dict[str, Any]:
    return {
        "run": new_run_to_dict(record.new),
        "status": record.status.value,
        "end_time": record.end_time,
        "params": dict(record.params),
        "metrics": batch_to_dict(record.metrics, packed=True),
        "used": list(record.used),
        "produced": list(record.produced),
    }


def run_to_dict(run: Run) -> dict[str, Any]:
    return {
        "id": run.id,
        "experiment_id": run.experiment_id,
        "name": run.name,
        "status": run.status.value,
        "start_time": run.start_time,
        "end_time": run.end_time,
        "user": run.user,
        "parent_id": run.parent_id,
        "git_commit": run.git_commit,
        "source": run.source,
        "lifecycle": run.lifecycle.value,
        "params": dict(run.params),
        "metrics": {k: metric_to_dict(m) for k, m in run.metrics.items()},
        "tags": dict(run.tags),
    }


def run_from_dict(data: Mapping[str, Any]) -> Run:
    return Run(
        id=data["id"],
        experiment_id=data["experiment_id"],
        name=data["name"],
        status=RUN_STATUSES[data["status"]],
        start_time=data["start_time"],
        end_time=data["end_time"],
        user=data["user"],
        parent_id=data["parent_id"],
        git_commit=data["git_commit"],
        source=data["source"],
        lifecycle=LIFECYCLES[data["lifecycle"]],
        params=dict(data["params"]),
        metrics={k: metric_from_dict(k, m) for k, m in data["metrics"].items()},
        tags=dict(data["tags"]),
    )


def query_to_dict(query: RunQuery) -> dict[str, Any]:
    return {
        "experiment_ids": list(query.experiment_ids),
        "filter": query.filter,
        "order_by": list(query.order_by),
        "limit": query.limit,
        "page_token": query.page_token,
        "view": query.view.value,
    }


def series_to_dict(series: MetricSeries, packed: bool = False) -> dict[str, Any]:
    if packed:
        return {
            "values": _packed(series.values, "d"),
            "steps": _packed(series.steps, "q"),
            "timestamps": _packed(series.timestamps, "q"),
        }
    values: list[float | str] = list(series.values)
    if not all(map(math.isfinite, series.values)):
        values = [encode_float(v) for v in series.values]
    return {"values": values, "steps": list(series.steps), "timestamps": list(series.timestamps)}


def _packed(numbers: Sequence[float] | Sequence[int], typecode: str) -> str:
    return b64encode(pack(numbers, typecode)).decode("ascii")


def batch_to_dict(
    metrics: MetricBatch | Sequence[MetricPoint], packed: bool = False
) -> dict[str, dict[str, Any]]:
    """A batch as ``{key: {"values": …, "steps": …, "timestamps": …}}``: the key is
    written once per series, and each column parses straight into an array."""
    return {key: series_to_dict(series, packed) for key, series in as_batch(metrics).items()}


def batch_from_dict(data: Mapping[str, Any]) -> dict[str, MetricSeries]:
    r"""Validate a batch that arrived from outside; numbers come back as ``array``\ s.

    Everything is checked column by column, in C: a million points must not cost a
    million Python-level checks. Columns may be JSON arrays or packed strings.

    Raises:
        InvalidInput: a key is malformed, or a series' columns differ in length or hold
            values of the wrong type.
    """
    if not isinstance(data, Mapping):
        raise InvalidInput("metrics: expected an object mapping each key to its series")
    return {
        check_key(key, "metrics"): _series_from_dict(key, series) for key, series in data.items()
    }


def _series_from_dict(key: str, data: Any) -> MetricSeries:
    field = f"metrics[{key!r}]"
    if not isinstance(data, Mapping):
        raise InvalidInput(f"{field}: expected an object with values, steps and timestamps")
    values, steps, timestamps = (data.get(name) for name in ("values", "steps", "timestamps"))
    series = MetricSeries(
        _float_column(field, values),
        _int64_column(field, steps, "steps"),
        _int64_column(field, timestamps, "timestamps"),
    )
    if not len(series.values) == len(series.steps) == len(series.timestamps):
        raise InvalidInput(f"{field}: values, steps and timestamps must have equal lengths")
    return series


def _int64_column(field: str, column: Any, name: str) -> array[int]:
    if isinstance(column, str):
        return unpack_ints(_unbase64(field, column, name))
    _check_column(field, column, name)
    try:
        return array("q", column)  # refuses floats, strings and numbers beyond 64 bits
    except (TypeError, OverflowError):
        raise InvalidInput(f"{field}: {name} must be 64-bit whole numbers") from None


def _float_column(field: str, column: Any) -> array[float]:
    if isinstance(column, str):
        return unpack_floats(_unbase64(field, column, "values"))
    _check_column(field, column, "values")
    try:
        return array("d", column)
    except TypeError:  # non-finite values arrive as strings; anything else is an error
        return array("d", [decode_float(v, field) for v in column])


def _check_column(field: str, column: Any, name: str) -> None:
    if not isinstance(column, list):
        raise InvalidInput(
            f"{field}: {name} must be an array, or a string of packed numbers (base64)"
        )
    # ``array`` takes true and false for 1 and 0; the SDK refuses them (``limits``), and
    # so does the wire. One pass of C over the column's types.
    if bool in set(map(type, column)):
        raise InvalidInput(f"{field}: {name} must be numbers, not true or false")


def _unbase64(field: str, text: str, name: str) -> bytes:
    try:
        blob = b64decode(text, validate=True)
    except ValueError:  # binascii.Error, or not even ASCII text
        raise InvalidInput(f"{field}: {name} is a string but not valid base64") from None
    if len(blob) % ITEM_SIZE:
        raise InvalidInput(
            f"{field}: packed {name} must hold whole {ITEM_SIZE}-byte little-endian numbers; "
            f"got {len(blob)} bytes"
        )
    return blob


def entry_to_dict(entry: ArtifactEntry) -> dict[str, Any]:
    return {"path": entry.path, "digest": entry.digest, "size": entry.size}


def entry_from_dict(data: Mapping[str, Any]) -> ArtifactEntry:
    return ArtifactEntry(data["path"], data["digest"], data["size"])


def object_to_dict(info: ObjectInfo) -> dict[str, Any]:
    return {"digest": info.digest, "size": info.size}


def object_from_dict(data: Mapping[str, Any]) -> ObjectInfo:
    return ObjectInfo(data["digest"], data["size"])

"""Domain values to JSON-ready dicts and back: the one wire shape of the REST API and --json.

JSON has no NaN or infinity, and metric values may be either, so a non-finite float is
written as the string ``"NaN"``, ``"Infinity"`` or ``"-Infinity"`` and read back as the float.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from cairn.core.artifact import ArtifactEntry, ObjectInfo
from cairn.core.limits import check_key
from cairn.core.run import Experiment, Lifecycle, Metric, MetricPoint, NewRun, Run, RunStatus
from cairn.core.search import RunQuery
from cairn.errors import InvalidInput

_INT64 = 2**63
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
    }


def experiment_from_dict(data: Mapping[str, Any]) -> Experiment:
    return Experiment(data["id"], data["name"], data["created_at"], Lifecycle(data["lifecycle"]))


def metric_to_dict(metric: Metric) -> dict[str, Any]:
    return {
        "key": metric.key,
        "value": encode_float(metric.value),
        "step": metric.step,
        "timestamp": metric.timestamp,
    }


def metric_from_dict(data: Mapping[str, Any]) -> Metric:
    key = data["key"]
    return Metric(
        key, decode_float(data["value"], f"metrics[{key!r}]"), data["step"], data["timestamp"]
    )


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
        status=RunStatus(data["status"]),
        start_time=data["start_time"],
        end_time=data["end_time"],
        user=data["user"],
        parent_id=data["parent_id"],
        git_commit=data["git_commit"],
        source=data["source"],
        lifecycle=Lifecycle(data["lifecycle"]),
        params=dict(data["params"]),
        metrics={k: metric_from_dict(m) for k, m in data["metrics"].items()},
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


def points_to_columns(points: Sequence[MetricPoint]) -> dict[str, list[Any]]:
    """Metric points as four parallel arrays: a compact, fast-to-parse ingest payload."""
    # One comprehension per column: three times faster than transposing with zip(*points).
    return {
        "keys": [p[0] for p in points],
        "values": [p[1] if math.isfinite(p[1]) else encode_float(p[1]) for p in points],
        "steps": [p[2] for p in points],
        "timestamps": [p[3] for p in points],
    }


def points_from_columns(columns: Mapping[str, Sequence[Any]]) -> list[MetricPoint]:
    """Raises:
    InvalidInput: the arrays differ in length or hold values of the wrong type.
    """
    keys, values = columns.get("keys", []), columns.get("values", [])
    steps, timestamps = columns.get("steps", []), columns.get("timestamps", [])
    if not len(keys) == len(values) == len(steps) == len(timestamps):
        raise InvalidInput("metrics: keys, values, steps and timestamps must have equal lengths")
    # Checked column by column: a million points must not cost a million regex matches.
    for key in set(keys):
        check_key(key, "metrics")
    for name, column in (("steps", steps), ("timestamps", timestamps)):
        if column and (
            not all(type(x) is int for x in column)
            or min(column) < -_INT64
            or max(column) >= _INT64
        ):
            raise InvalidInput(f"metrics: {name} must be 64-bit whole numbers")
    if not all(type(v) is float for v in values):  # ints, or non-finite values as strings
        values = [
            v if type(v) is float else decode_float(v, f"metrics[{k!r}]")
            for k, v in zip(keys, values, strict=True)
        ]
    return list(zip(keys, values, steps, timestamps, strict=True))


def entry_to_dict(entry: ArtifactEntry) -> dict[str, Any]:
    return {"path": entry.path, "digest": entry.digest, "size": entry.size}


def entry_from_dict(data: Mapping[str, Any]) -> ArtifactEntry:
    return ArtifactEntry(data["path"], data["digest"], data["size"])


def object_to_dict(info: ObjectInfo) -> dict[str, Any]:
    return {"digest": info.digest, "size": info.size}


def object_from_dict(data: Mapping[str, Any]) -> ObjectInfo:
    return ObjectInfo(data["digest"], data["size"])

"""Experiments, runs and what a run records."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class RunStatus(StrEnum):
    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"


class Lifecycle(StrEnum):
    ACTIVE = "active"
    DELETED = "deleted"


class ViewType(StrEnum):
    """Which runs a search sees."""

    ACTIVE = "active"
    DELETED = "deleted"
    ALL = "all"


@dataclass(frozen=True, slots=True)
class Experiment:
    id: str
    name: str
    created_at: int  # milliseconds since the epoch
    lifecycle: Lifecycle = Lifecycle.ACTIVE


@dataclass(frozen=True, slots=True)
class Metric:
    """One recorded point of a metric. ``value`` may be NaN or ±inf."""

    key: str
    value: float
    step: int
    timestamp: int  # milliseconds since the epoch


# The ingest hot path carries points as plain tuples (key, value, step, timestamp_ms):
# building a dataclass per point would cost more than everything else log_metric does.
MetricPoint = tuple[str, float, int, int]


@dataclass(frozen=True, slots=True)
class NewRun:
    """What a caller decides about a run when it starts."""

    experiment_id: str
    name: str
    start_time: int
    user: str
    parent_id: str | None = None
    git_commit: str | None = None
    source: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Run:
    id: str
    experiment_id: str
    name: str
    status: RunStatus
    start_time: int
    end_time: int | None
    user: str
    parent_id: str | None
    git_commit: str | None
    source: str | None
    lifecycle: Lifecycle
    params: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, Metric] = field(default_factory=dict)  # latest point per key
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_finished(self) -> bool:
        return self.status is not RunStatus.RUNNING

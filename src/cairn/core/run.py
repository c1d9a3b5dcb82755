"""Experiments, runs and what a run records."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple

from cairn.core.actor import Acting
from cairn.core.ids import ID_LENGTH
from cairn.core.limits import (
    MAX_NAME,
    check_int64,
    check_name,
    check_optional_text,
    check_tags,
    check_text,
)
from cairn.errors import InvalidInput, PermissionDenied

MAX_GIT_COMMIT = 64
MAX_SOURCE = 4096


class RunStatus(StrEnum):
    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"


class Lifecycle(StrEnum):
    ACTIVE = "active"
    DELETED = "deleted"


# Stored and wire values to members, for decoding many runs (a lookup, not an Enum call).
RUN_STATUSES = {status.value: status for status in RunStatus}
LIFECYCLES = {lifecycle.value: lifecycle for lifecycle in Lifecycle}


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
    project: str = "default"  # whose members may see and change it


class Metric(NamedTuple):
    """One recorded point of a metric. ``value`` may be NaN or ±inf.

    A named tuple rather than a dataclass: a search builds tens of thousands of these,
    and a tuple is several times cheaper to create."""

    key: str
    value: float
    step: int
    timestamp: int  # milliseconds since the epoch


def metric_from_point(point: Iterable[Any]) -> Metric:
    """``Metric(*point)`` for ``(key, value, step, timestamp)``, built by ``tuple`` itself:
    a named tuple's own constructor runs Python code, and a search builds thousands."""
    return tuple.__new__(Metric, point)


# A point as people write it: (key, value, step, timestamp_ms).
MetricPoint = tuple[str, float, int, int]


@dataclass(frozen=True, slots=True)
class MetricSeries:
    """Points of one metric from one batch, as parallel columns, in the order logged.

    This is the shape metrics travel in from the SDK's buffer, over the wire, into a
    stored chunk: no Python object per point, and the key is written once per series.
    Any sequence works (lists from JSON, ``array`` after validation).
    """

    values: Sequence[float]
    steps: Sequence[int]
    timestamps: Sequence[int]

    def __len__(self) -> int:
        return len(self.values)

    def latest(self) -> int:
        """Index of the latest point: highest step, then latest timestamp, then last
        logged. C-level list methods do the work; Python loops only over tied steps."""
        steps = self.steps
        top = max(steps)
        if steps.count(top) == 1:
            return steps.index(top)
        tied = [i for i, step in enumerate(steps) if step == top]
        return max(tied, key=lambda i: (self.timestamps[i], i))

    def points(self, key: str) -> list[Metric]:
        columns = zip(self.values, self.steps, self.timestamps, strict=True)
        return [Metric(key, value, step, stamp) for value, step, stamp in columns]


# A batch of metrics: the series of each key.
MetricBatch = Mapping[str, MetricSeries]


def as_batch(metrics: MetricBatch | Sequence[MetricPoint]) -> MetricBatch:
    """A batch from loose points (grouped per key, in logged order), or the batch itself."""
    if isinstance(metrics, Mapping):
        return metrics
    grouped: dict[str, tuple[list[float], list[int], list[int]]] = {}
    for key, value, step, stamp in metrics:
        columns = grouped.setdefault(key, ([], [], []))
        columns[0].append(value)
        columns[1].append(step)
        columns[2].append(stamp)
    return {key: MetricSeries(*columns) for key, columns in grouped.items()}


@dataclass(frozen=True, slots=True)
class NewRun:
    """What a caller decides about a run when it starts.

    ``user``: who the run is for; None leaves it to whoever is acting (``run_user``).
    """

    experiment_id: str
    name: str
    start_time: int
    user: str | None
    parent_id: str | None = None
    git_commit: str | None = None
    source: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)


def check_new_run(new: NewRun) -> NewRun:
    """The run as a store records it: each field checked, tag values as strings.

    Raises:
        InvalidInput: naming the field and what was expected.
    """
    check_text(new.experiment_id, "experiment_id")
    check_name(new.name, "name")
    check_int64(new.start_time, "start_time")
    check_optional_text(new.user, "user", MAX_NAME)
    check_optional_text(new.parent_id, "parent_id", ID_LENGTH)
    check_optional_text(new.git_commit, "git_commit", MAX_GIT_COMMIT)
    check_optional_text(new.source, "source", MAX_SOURCE)
    return dataclasses.replace(new, tags=check_tags(new.tags))


def check_ending(status: RunStatus, end_time: int, start_time: int) -> None:
    """How a run may end: in a final status, no earlier than it started.

    Raises:
        InvalidInput: naming ``status`` or ``end_time``.
    """
    if status == RunStatus.RUNNING:
        raise InvalidInput("status: a run ends FINISHED, FAILED or KILLED, not RUNNING")
    check_int64(end_time, "end_time")
    if end_time < start_time:
        raise InvalidInput(
            f"end_time: {end_time} is before the run's start_time {start_time} "
            "(both in milliseconds since the epoch)"
        )


def run_user(claimed: str | None, acting: Acting) -> str:
    """Who a new run belongs to. An account that authenticated to a server starts runs as
    itself: ``claimed`` may only repeat its name. Otherwise (the embedded store, a
    server without authentication) the claim stands, and no claim means the actor.

    Raises:
        PermissionDenied: ``claimed`` names someone other than the authenticated account.
    """
    principal = acting.principal
    if principal is None or not principal.account:
        return acting.actor if claimed is None else claimed
    if claimed is not None and claimed != principal.name:
        raise PermissionDenied(
            f"user: {principal.name} may not start a run as {claimed!r}; a run's user is the "
            "account whose token starts it (leave `user` out, or send its own name)"
        )
    return principal.name


@dataclass(frozen=True, slots=True)
class RunRecord:
    """A run recorded whole, already ended: what it started as, its params, metrics and
    the objects it used and produced (a pipeline step taken from the cache is one).
    Many are recorded in one transaction (``MetadataStore.record_runs``)."""

    new: NewRun
    status: RunStatus
    end_time: int
    params: Mapping[str, str] = field(default_factory=dict)
    metrics: MetricBatch | Sequence[MetricPoint] = ()
    used: Sequence[str] = ()
    produced: Sequence[str] = ()


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

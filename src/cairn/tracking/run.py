"""The run a training script holds: ``with cairn.start_run(...) as run: run.log_metric(...)``.

Metrics, params and tags are checked at the call (a bad key or a conflicting param raises
right there) and then buffered by a :class:`Batcher`; artifacts are stored at once. Ending
the run (the ``with`` block, ``end()``, or interpreter exit) flushes everything first; an
exception inside the block marks the run FAILED and still flushes.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import suppress
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from cairn.core.artifact import ArtifactEntry
from cairn.core.limits import check_key, check_params, check_tags, metric_step, metric_value
from cairn.core.run import Metric, MetricBatch, MetricPoint, Run, RunStatus
from cairn.errors import CairnError, InvalidState, ParamConflict
from cairn.tracking.batcher import Batcher
from cairn.tracking.service import Progress, TrackingService

if TYPE_CHECKING:
    from cairn.core.model import ModelVersion


class MetricLogger(Protocol):
    def __call__(
        self, key: str, value: float, step: int = 0, timestamp: int | None = None
    ) -> None: ...


class ModelRegistrar(Protocol):
    """What packages and registers a model (the registry's service, wired by the SDK)."""

    def register(
        self,
        model: Any,
        name: str,
        *,
        run_id: str | None = None,
        input_example: Any = None,
        files: Mapping[str, Path] | None = None,
        description: str = "",
        project: str | None = None,
        card: Mapping[str, Any] | None = None,
    ) -> ModelVersion: ...


class ActiveRun:
    """A run in progress. Logging calls return in microseconds; see ``flush()``.

    ``log_metric(key, value, step=0, timestamp=None)`` records one point of a metric
    (NaN and ±inf are kept as such; the timestamp defaults to now, in milliseconds). It is
    the batcher's ``add_metric``, bound to the run, so a training loop pays one call.
    """

    def __init__(
        self,
        service: TrackingService,
        run: Run,
        models: Callable[[], ModelRegistrar] | None = None,
    ) -> None:
        self._service = service
        self._models = models  # opened when the first model is logged
        self.id = run.id
        self.name = run.name
        self.experiment_id = run.experiment_id
        self._params: dict[str, str] = dict(run.params)
        self._ended = False
        self._batcher = Batcher(self._write)
        self.log_metric: MetricLogger = self._batcher.add_metric
        _open_runs.add(self)

    def __repr__(self) -> str:
        return f"<ActiveRun {self.id} {self.name!r}>"

    def _write(
        self,
        metrics: MetricBatch,
        params: Mapping[str, str],
        tags: Mapping[str, str],
        batch_id: str,
    ) -> None:
        self._service.metadata.log_batch(self.id, metrics, params, tags, batch_id)

    # logging

    def log_metrics(
        self, metrics: Mapping[str, float], step: int = 0, timestamp: int | None = None
    ) -> None:
        """Record one point of each metric, all at the same step; if any key or value is
        invalid, none is recorded."""
        stamp = time.time_ns() // 1_000_000 if timestamp is None else timestamp
        step = metric_step(step, "step")
        points: list[MetricPoint] = [
            (check_key(key, "metrics"), metric_value(value, key), step, stamp)
            for key, value in metrics.items()
        ]
        self._batcher.add_metrics(points)

    def log_param(self, key: str, value: Any) -> None:
        self.log_params({key: value})

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Params are immutable: logging another value for a logged key raises.

        Raises:
            ParamConflict: a key was logged before with a different value.
            InvalidInput: a key or value breaks the limits.
        """
        checked = check_params(params)
        for key, value in checked.items():
            held = self._params.get(key)
            if held is not None and held != value:
                raise ParamConflict(
                    f"param {key!r} of run {self.id} is already {held!r}; params are "
                    f"immutable, so it cannot become {value!r} (log it under another key)"
                )
        self._params.update(checked)
        self._batcher.add_params(checked)

    def set_tag(self, key: str, value: Any) -> None:
        self.set_tags({key: value})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self._batcher.add_tags(check_tags(tags))

    def log_artifact(
        self, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> ArtifactEntry:
        """Store a file among the run's artifacts (at ``artifact_path/<file name>``)."""
        return self._service.log_artifact(self.id, local_path, artifact_path)

    def log_artifacts(
        self,
        local_dir: str | os.PathLike[str],
        artifact_path: str | None = None,
        progress: Progress | None = None,
    ) -> list[ArtifactEntry]:
        """Store every file under a folder, keeping its layout below ``artifact_path``."""
        return self._service.log_artifacts(self.id, local_dir, artifact_path, progress)

    def log_input(self, ref: str) -> str:
        """Record that this run used a data version (``customers@2``; ``customers`` for
        the newest): a lineage edge from the run to it. Returns the version, resolved.

        Raises:
            NotFound: no such data version. InvalidInput: a malformed reference.
        """
        return self._service.metadata.log_inputs(self.id, [ref])[0]

    def log_model(
        self,
        model: Any,
        name: str,
        *,
        input_example: Any = None,
        files: Mapping[str, str | os.PathLike[str]] | None = None,
        description: str = "",
        card: Mapping[str, Any] | None = None,
    ) -> ModelVersion:
        """Package the model (its flavor found from the object) and register it as the
        next version of ``name``, made by this run. ``input_example`` (a few rows) gives
        the signature and is predicted on to check it fits; ``files`` are extra files a
        custom Python model needs; ``card`` the model card's fields (intended_use,
        limitations, training_data, ethical_considerations, metrics).

        Raises:
            InvalidInput: no flavor knows the model, or the example does not fit it.
        """
        if self._models is None:
            raise InvalidState(
                f"run {self.id} was not started by cairn.start_run: it cannot log models"
            )
        paths = {key: Path(value) for key, value in (files or {}).items()}
        return self._models().register(
            model, name, run_id=self.id, input_example=input_example, files=paths,
            description=description, card=card,
        )  # fmt: skip

    # reading back

    @property
    def info(self) -> Run:
        """The run as stored, after flushing what is buffered."""
        self.flush()
        return self._service.metadata.get_run(self.id)

    def get_metric_history(self, key: str) -> list[Metric]:
        self.flush()
        return self._service.metadata.get_metric_history(self.id, key)

    # ending

    def flush(self) -> None:
        """Store everything logged so far; when this returns, it is durable.

        Raises:
            CairnError: buffered data could not be stored (the message says why).
        """
        self._batcher.flush()

    def end(self, status: RunStatus | str = RunStatus.FINISHED) -> Run:
        """Flush and record the end of the run; a second call does nothing more."""
        with _end_lock:
            if self._ended:
                return self._service.metadata.get_run(self.id)
            self._ended = True
        _open_runs.discard(self)
        try:
            self._batcher.close()
        except CairnError:
            # Record the failure if the store is reachable; the flush error is what matters.
            with suppress(CairnError):
                self._service.end_run(self.id, RunStatus.FAILED)
            raise
        return self._service.end_run(self.id, RunStatus(status))

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.end(RunStatus.FINISHED)
        elif issubclass(exc_type, KeyboardInterrupt):
            self.end(RunStatus.KILLED)
        else:
            self.end(RunStatus.FAILED)


_open_runs: set[ActiveRun] = set()
_end_lock = threading.Lock()
_uncaught: list[BaseException] = []


def _remember_uncaught(kind: type[BaseException], exc: BaseException, tb: Any) -> None:
    _uncaught.append(exc)
    _previous_hook(kind, exc, tb)


def _end_open_runs() -> None:
    """At interpreter exit, flush and end runs left open (FAILED if the script crashed)."""
    status = RunStatus.FAILED if _uncaught else RunStatus.FINISHED
    for run in list(_open_runs):
        try:
            run.end(status)
        except Exception as exc:  # noqa: BLE001  # exiting: report, do not raise
            print(f"cairn: run {run.id} could not be ended cleanly: {exc}", file=sys.stderr)


_previous_hook = sys.excepthook
sys.excepthook = _remember_uncaught
atexit.register(_end_open_runs)

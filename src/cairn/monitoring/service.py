"""The monitoring service: make a monitor, evaluate a window, read what it found.

A monitor's reference is computed once, when it is made, from the data the model was
trained on (a table, a file, or columns), and kept as an object; each evaluation reads it
back, takes a window — the model's logged traffic over the monitor's window, or a file —
and keeps its report as an object and its summary as a result (``cairn.core.monitor``).
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from cairn.core.model import check_model_name, parse_model_ref
from cairn.core.monitor import (
    DEGRADED,
    DRIFT,
    LOG,
    ColumnChoice,
    Monitor,
    MonitorResult,
    check_alert,
    check_monitor,
    check_window,
    parse_condition,
)
from cairn.core.monitor_api import LABELS_AT_ONCE
from cairn.errors import CairnError, InvalidInput, NotFound
from cairn.monitoring import reference as references
from cairn.monitoring.evaluation import evaluate
from cairn.monitoring.labels import labels_of
from cairn.monitoring.logged import logged_window
from cairn.monitoring.performance import degradation, performance
from cairn.monitoring.retrain import Retrained, Retrainer
from cairn.monitoring.window import PREDICTION, REQUEST_ID
from cairn.serving.traffic import request_id

if TYPE_CHECKING:
    from cairn.core.model_api import Registry
    from cairn.core.ports import ArtifactStore, Monitors

logger = logging.getLogger(__name__)
_MOST_REPORT = 64 * 2**20  # bytes of a stored report read back
LABEL = "label"  # the column of a file window that holds its labels
_NAMED = 5  # drifted columns a retrain's reason names
_LEAST_SECRET = 16  # characters of a webhook's shared secret, as a release webhook's


@dataclass(frozen=True)
class Status:
    monitor: Monitor
    last: MonitorResult | None


class MonitorService:
    """Monitors for one caller. ``notify`` posts what waits in the webhook outbox (called
    after a change of state is recorded); ``retrainer`` acts on ``on_drift`` and
    ``on_degradation``."""

    def __init__(self, monitors: Monitors, registry: Registry, artifacts: ArtifactStore,
                 notify: Callable[[], None] = lambda: None,
                 retrainer: Retrainer | None = None,
                 data: Callable[[str], Path] | None = None) -> None:  # fmt: skip
        """``data`` makes a local copy of a data version (``customers@3``): a reference
        given by its data version is read from there."""
        self.monitors, self.registry, self.artifacts = monitors, registry, artifacts
        self._notify, self._retrainer, self._data = notify, retrainer, data
        self.retrained: dict[tuple[str, int], Retrained] = {}  # this session's, by window

    def create(
        self,
        name: str,
        model: str,
        reference: Any,
        window_seconds: int = 3600,
        features: tuple[str, ...] = (),
        choices: Mapping[str, ColumnChoice] | None = None,
        share: float = 0.5,
        on_drift: str | None = None,
        alerts: tuple[str, ...] = (LOG,),
        alert_secret: str | None = None,
        degraded_when: str | None = None,
        on_degradation: str | None = None,
    ) -> Monitor:
        """A monitor of ``model`` (a reference: ``churn@production``) whose windows are
        compared with ``reference``: the training data, as a table, columns, rows of
        features, a CSV or Parquet file, or the data version it was trained on
        (``customers@3``: a version holding one such file). Each change of its state is told to its
        ``alerts``: the log, and webhooks (``webhook:URL``) signed with ``alert_secret``.
        ``degraded_when`` (``"accuracy < 0.85"``) says when a window's performance means
        the model degraded; ``on_drift`` and ``on_degradation`` what is done then.

        Raises:
            InvalidInput: a field not as a monitor's must be, a feature the reference data
                has not, or reference data of no shape a table has.
            NotFound: the model is not there for the caller.
            AlreadyExists: a monitor of that name exists.
        """
        if any(map(check_alert, alerts)) and len(alert_secret or "") < _LEAST_SECRET:
            raise InvalidInput(
                f"alert secret: a webhook alert needs a shared secret of {_LEAST_SECRET} "
                "characters or more (it signs each event)"
            )
        self.registry.resolve(parse_model_ref(model))  # refused now, not at the first window
        if _names_data(reference) and self._data is not None:
            reference = _table_file(self._data(str(reference)), str(reference))
        columns = table_columns(reference, "reference")
        unknown = [f for f in features if f not in columns]
        if unknown:
            raise InvalidInput(f"features: {unknown[0]!r} is not a column of the reference "
                               f"data (it has {', '.join(list(columns)[:10])})")  # fmt: skip
        watched = {k: v for k, v in columns.items() if not features or k in features}
        profile = references.to_json(references.reference_of(watched))
        digest = self.artifacts.put_stream(io.BytesIO(orjson.dumps(profile))).digest
        monitor = Monitor(name, model, digest, window_seconds, tuple(features),
                          dict(choices or {}), share, on_drift, tuple(alerts),
                          degraded_when=degraded_when, on_degradation=on_degradation)  # fmt: skip
        return self.monitors.create_monitor(check_monitor(monitor), alert_secret)

    def run(
        self,
        name: str,
        current: Any = None,
        since: int | None = None,
        until: int | None = None,
    ) -> MonitorResult:
        """Evaluate a window: ``current`` (a table, columns, or a CSV or Parquet file), or
        the model's logged traffic from ``since`` to ``until`` (milliseconds since the
        epoch; by default the monitor's window up to now). A window without rows keeps
        the monitor's state.

        Raises:
            NotFound: no such monitor for the caller.
            PermissionDenied: the caller may read it but not evaluate it.
            InvalidInput: a window that ends before it starts, or data of no shape a
                table has.
        """
        monitor = self.monitors.get_monitor(name)
        reference = self.reference(monitor)
        until = int(time.time() * 1000) if until is None else until
        since = until - monitor.window_seconds * 1000 if since is None else since
        model = parse_model_ref(monitor.model).name
        if current is None:
            check_window(since, until)
            columns = logged_window(self.registry, self.artifacts, model, since, until).columns
            ids = columns.pop(REQUEST_ID, None)
            predictions = columns.pop(PREDICTION, None)
            labels = None if ids is None else labels_of(self.monitors, model, ids)
        else:
            columns = table_columns(current, "current")
            predictions, labels = columns.pop(PREDICTION, None), columns.pop(LABEL, None)
        # A model of several outputs a row is judged by its inputs only.
        columns = {k: v for k, v in columns.items() if not k.startswith(f"{PREDICTION}[")}
        if monitor.features:
            columns = {k: v for k, v in columns.items() if k in monitor.features}
        report = evaluate(reference, columns, monitor.choices, monitor.share) if columns else None
        if report is None:  # no traffic in the window
            report = {"state": monitor.state, "rows": 0, "drift": None, "findings": [],
                      "distributions": {}}  # fmt: skip
        if predictions is not None:
            asked = None if labels is None else np.asarray(labels)
            report["performance"] = performance(np.asarray(predictions), asked)
            if monitor.degraded_when is not None:
                condition = parse_condition(monitor.degraded_when, "degraded_when")
                judged = degradation(condition, report["performance"])
                report["degradation"] = judged
                if judged is not None and judged["degraded"]:
                    report["state"] = DEGRADED  # the model's answers, before its inputs
        report |= {"monitor": monitor.name, "model": monitor.model, "since": since,
                   "until": until}  # fmt: skip
        stored = self.artifacts.put_stream(io.BytesIO(_dumps(report)))
        drift = report["drift"] or {"share": 0.0, "columns": []}
        found = self.monitors.record_result(MonitorResult(
            monitor.name, since, until, report["rows"], report["state"], drift["share"],
            tuple(c["column"] for c in drift["columns"] if c["drifted"]),
            len(report["findings"]), stored.digest,
        ))  # fmt: skip
        if found.state != monitor.state:
            self._changed(monitor, found, report.get("degradation"))
        return found

    def _changed(self, monitor: Monitor, found: MonitorResult,
                 degradation: Mapping[str, Any] | None) -> None:  # fmt: skip
        """Tell the monitor's alerts of its new state (webhooks: through the outbox the
        change was recorded in), and act on it."""
        if LOG in monitor.alerts:
            level = logging.WARNING if found.state in (DRIFT, DEGRADED) else logging.INFO
            logger.log(level, "monitor %s: %s -> %s (window %d, %d rows, drifted: %s)",
                       monitor.name, monitor.state, found.state, found.number, found.rows,
                       ", ".join(found.drifted) or "none")  # fmt: skip
        if any(map(check_alert, monitor.alerts)):
            self._notify()
        if found.state == DRIFT and monitor.on_drift is not None:
            named = ", ".join(found.drifted[:_NAMED]) or "the dataset"
            more = len(found.drifted) - _NAMED
            drifted = f"{named} and {more} more" if more > 0 else named
            self._retrain(monitor, found, "on_drift", f"window {found.number} drifted ({drifted})")
        if found.state == DEGRADED and monitor.on_degradation is not None and degradation:
            how = ("estimated" if degradation["kind"] == "estimated"
                   else f"realised on {degradation['labelled']} labels")  # fmt: skip
            said = f"{degradation['condition']}: {degradation['value']:.4g}, {how}"
            self._retrain(monitor, found, "on_degradation",
                          f"window {found.number} degraded ({said})")  # fmt: skip

    def _retrain(self, monitor: Monitor, found: MonitorResult, on: str, cause: str) -> None:
        """Act on a drift or a degradation (``on``: the field that says how, ``cause``:
        why, in words): retrain and ask for the release, audited either way; a retrain
        that fails is said and recorded, and the evaluation stands."""
        action = getattr(monitor, on)
        if self._retrainer is None:
            logger.warning("monitor %s: %s %s is not run here (no pipelines)", monitor.name, on,
                           action)  # fmt: skip
            return
        window = {"window": found.number, on: action}
        try:
            done = self._retrainer.retrain(monitor, found, action, cause)
        except CairnError as error:
            logger.error("monitor %s: %s failed: %s", monitor.name, action, error)
            self.monitors.record_action(monitor.name, "retrain_failed",
                                        {**window, "error": str(error)[:2000]})  # fmt: skip
            return
        self.retrained[(monitor.name, found.number)] = done
        self.monitors.record_action(monitor.name, "retrained", {**window, **done.to_dict()})

    def log_labels(self, model: str, request_ids: Sequence[str], labels: Sequence[Any]) -> int:
        """Keep the labels of answered requests of ``model`` (each a class, a number, or a
        list of them for a request of several rows), found by request id when a window
        is evaluated; a later label for a request replaces an earlier.

        Raises:
            InvalidInput: unequal lengths, a request id not as a server takes one, a
                label of no such kind.
            NotFound: the model is not there for the caller.
            PermissionDenied: the caller may read the model but not write there.
        """
        check_model_name(model)
        if len(request_ids) != len(labels):
            raise InvalidInput(f"labels: {len(labels)} labels for {len(request_ids)} request ids")
        pairs = [(request_id(str(r), f"request_ids[{i}]") if r else _no_id(i), _label(v, i))
                 for i, (r, v) in enumerate(zip(request_ids, labels, strict=True))]  # fmt: skip
        return sum(self.monitors.log_labels(model, pairs[at : at + LABELS_AT_ONCE])
                   for at in range(0, len(pairs), LABELS_AT_ONCE))  # fmt: skip

    def status(self) -> list[Status]:
        """Every monitor the caller may read, with its last evaluation."""
        return [Status(m, next(iter(self.monitors.results(m.name, 1)), None))
                for m in self.monitors.list_monitors()]  # fmt: skip

    def results(self, name: str, last: int = 50) -> list[MonitorResult]:
        return self.monitors.results(name, last)

    def report(self, name: str, number: int | None = None) -> dict[str, Any]:
        """The report of the monitor's evaluation ``number`` (by default its last), with
        the drift of every earlier evaluation kept (for the report's history).

        Raises:
            NotFound: no such monitor, or no such evaluation yet.
        """
        history = self.monitors.results(name, 1_000)
        chosen = [r for r in history if number is None or r.number == number]
        if not chosen:
            said = "no evaluation yet" if number is None else f"no evaluation {number}"
            raise NotFound(f"monitor {name!r}: {said} (`cairn monitor run {name}` makes one)")
        found: dict[str, Any] = orjson.loads(self._read(chosen[-1].report))
        found["number"] = chosen[-1].number
        found["history"] = [{"number": r.number, "until": r.until, "rows": r.rows,
                             "state": r.state, "drift_share": r.drift_share}
                            for r in history if r.number <= chosen[-1].number]  # fmt: skip
        return found

    def reference(self, monitor: Monitor) -> dict[str, references.ColumnReference]:
        """The monitor's reference profile, read back and checked."""
        return references.from_json(orjson.loads(self._read(monitor.reference)))

    def _read(self, digest: str) -> bytes:
        with self.artifacts.open(digest) as chunks:
            return b"".join(_bounded(chunks, digest))


def _no_id(index: int) -> str:
    raise InvalidInput(f"request_ids[{index}]: expected the request's id, got nothing")


def _label(value: Any, index: int) -> str:
    """A label as JSON text: a class (text or a whole number), a number, or a list."""
    ok = (str, int, float)
    if isinstance(value, np.generic):
        value = value.item()
    items = value if isinstance(value, list) else [value]
    valid = bool(items) and all(
        isinstance(v, ok)
        and not isinstance(v, bool)
        and (not isinstance(v, float) or np.isfinite(v))
        for v in items
    )
    if not valid:
        raise InvalidInput(f"labels[{index}]: expected a class, a finite number or a list of "
                           f"them, got {type(value).__name__}")  # fmt: skip
    return orjson.dumps(value).decode()


def _bounded(chunks: Iterator[bytes], digest: str) -> Iterator[bytes]:
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > _MOST_REPORT:
            raise InvalidInput(f"object {digest}: larger than a monitor's reference or report "
                               f"may be ({_MOST_REPORT} bytes)")  # fmt: skip
        yield chunk


def _dumps(report: dict[str, Any]) -> bytes:
    def plain(value: Any) -> Any:  # a NumPy number orjson does not write itself
        return value.item() if isinstance(value, np.generic) else str(value)

    return orjson.dumps(report, option=orjson.OPT_SERIALIZE_NUMPY, default=plain)


def _names_data(reference: Any) -> bool:
    """Whether ``reference`` names a data version (``customers@3``) rather than a file."""
    return isinstance(reference, str) and "@" in reference and not Path(reference).exists()


def _table_file(copy: Path, ref: str) -> Path:
    """The one table file of a data version's local copy.

    Raises:
        InvalidInput: the version holds no CSV or Parquet file, or several.
    """
    if copy.is_file():
        return copy
    tables = sorted(p for p in copy.rglob("*") if p.suffix.lower() in (".csv", ".parquet", ".pq"))
    if len(tables) != 1:
        raise InvalidInput(f"reference {ref}: expected a data version of one CSV or Parquet "
                           f"file, found {len(tables)}")  # fmt: skip
    return tables[0]


def table_columns(data: Any, field: str) -> dict[str, Any]:
    """Columns of ``data``: a pandas DataFrame by name, a mapping as it is, a 2-D array
    or list of rows by position (``"0"``, ``"1"`` … as a served tensor model's traffic is
    logged), a CSV or Parquet file read as a table.

    Raises:
        InvalidInput: naming ``field``, data of no such shape, or a file not readable.
    """
    if isinstance(data, str | Path):
        data = _read_table(Path(data), field)
    if hasattr(data, "columns") and hasattr(data, "to_numpy"):  # a pandas DataFrame
        return {str(c): data[c].to_numpy() for c in data.columns}
    if isinstance(data, Mapping):
        return {str(k): v for k, v in data.items()}
    array = np.asarray(data)
    if array.ndim != 2 or array.shape[0] == 0:
        raise InvalidInput(f"{field}: expected a table, columns by name, rows of features, or "
                           f"a CSV or Parquet file; got shape {list(array.shape)}")  # fmt: skip
    return {str(i): array[:, i] for i in range(array.shape[1])}


def _read_table(path: Path, field: str) -> Any:
    import pandas as pd

    if not path.is_file():
        raise InvalidInput(f"{field}: no file {str(path)!r}")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if path.suffix.lower() == ".csv":
            return pd.read_csv(path)
    except Exception as exc:  # a malformed file: said, with what the reader said
        raise InvalidInput(f"{field}: {path.name} is not a readable table ({exc})") from exc
    raise InvalidInput(f"{field}: {path.name}: expected a .csv or .parquet file")

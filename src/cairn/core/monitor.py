"""Monitors: what watches a served model, and what each look at a window of its traffic
found.

A :class:`Monitor` names a model reference (``churn@production``), the reference profile
its windows are compared with (an object in the artifact store, computed once when the
monitor is made), how long a window is, which features it watches and how (a drift method
and threshold per column), and what it does when the data drifts or the model degrades.
Each evaluation is a :class:`MonitorResult`: the window, how many rows it held, the state
it found (``ok``, ``drift``, ``degraded``), the share of drifted columns, the drifted
columns and the data-quality findings, and the full report as an object.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import orjson

from cairn.core.artifact import check_digest
from cairn.core.gates.base import compares, comparison
from cairn.core.limits import INT64_MAX, check_int64
from cairn.core.model import parse_model_ref
from cairn.core.performance import HIGHER_IS_BETTER
from cairn.errors import InvalidInput

OK, DRIFT, DEGRADED, NEW = "ok", "drift", "degraded", "new"
LOG, WEBHOOK = "log", "webhook"
STATES = (NEW, OK, DRIFT, DEGRADED)
ACTIONS = ("retrain",)  # what ``on_drift`` and ``on_degradation`` may do: ``retrain:PIPELINE``
_CONDITION = re.compile(r"^\s*([a-z_0-9]+)\s*(.+)$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
# A pipeline: a name cairn.yaml declares, or module:attribute (as `cairn run` takes it).
_PIPELINE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}(:[A-Za-z_][A-Za-z0-9_]{0,127})?$")
_COLUMN = re.compile(r"^[^\x00-\x1f]{1,250}$")
_LONGEST_WINDOW = 366 * 24 * 3600  # a year, in seconds


@dataclass(frozen=True, slots=True)
class ColumnChoice:
    """A column's own drift method and threshold (None: the defaults for its kind and
    size)."""

    method: str | None = None
    threshold: float | None = None


@dataclass(frozen=True, slots=True)
class Monitor:
    name: str
    model: str  # a model reference: churn@production, churn/3
    reference: str  # the digest of the reference profile (JSON) in the artifact store
    window_seconds: int = 3600
    features: tuple[str, ...] = ()  # () for every column the reference has
    choices: Mapping[str, ColumnChoice] = field(default_factory=dict)
    share: float = 0.5  # the dataset drifted when this share of its columns did
    on_drift: str | None = None  # retrain:PIPELINE
    alerts: tuple[str, ...] = (LOG,)  # "log", "webhook:URL": told when the state changes
    state: str = NEW
    degraded_when: str | None = None  # "accuracy < 0.85": the model degraded
    on_degradation: str | None = None  # retrain:PIPELINE
    created_at: int = 0  # set by the store
    created_by: str = ""


@dataclass(frozen=True, slots=True)
class MonitorResult:
    monitor: str
    since: int  # the window, milliseconds since the epoch
    until: int
    rows: int
    state: str
    drift_share: float
    drifted: tuple[str, ...]
    findings: int  # data-quality findings
    report: str  # the digest of the full report (JSON) in the artifact store
    number: int = 0  # the monitor's evaluations, counted from 1; set by the store
    evaluated_at: int = 0
    evaluated_by: str = ""


ACTIONS_TAKEN = ("retrained", "retrain_failed")  # what a monitor records it did


def check_result(result: MonitorResult) -> MonitorResult:
    """Raises:
    InvalidInput: naming the field of an evaluation that is not as one's must be.
    """
    check_monitor_name(result.monitor)
    check_window(result.since, result.until)
    if result.state not in STATES:  # new: a window without rows keeps the monitor's state
        raise InvalidInput(f"state: expected one of {', '.join(STATES)}, got "
                           f"{result.state!r:.40}")  # fmt: skip
    if not (isinstance(result.drift_share, int | float) and 0 <= result.drift_share <= 1):
        raise InvalidInput(f"drift_share: expected a share from 0 to 1, got {result.drift_share!r}")
    for count in ("rows", "findings"):
        if check_int64(getattr(result, count), count) < 0:
            raise InvalidInput(f"{count}: expected 0 or more")
    check_digest(result.report)
    return result


def check_label(text: object, index: int) -> str:
    """A label as kept (JSON text): a class (text or a whole number), a finite number, or a
    list of them, one a row.

    Raises:
        InvalidInput: naming ``labels[index]``.
    """
    try:
        value = orjson.loads(text) if isinstance(text, str) else None
    except orjson.JSONDecodeError:
        value = None
    items = value if isinstance(value, list) else [value]
    if not items or not all(_label_value(v) for v in items):
        raise InvalidInput(f"labels[{index}]: expected the JSON text of a class, a finite "
                           f"number or a list of them, got {str(text)[:40]!r}")  # fmt: skip
    return str(text)


def _label_value(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return False
    return not isinstance(value, float) or math.isfinite(value)


def check_monitor_name(name: object) -> str:
    """Raises:
    InvalidInput: naming what a monitor's name may hold.
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInput(
            f"monitor name {name!r}: expected 1 to 128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def check_monitor(monitor: Monitor) -> Monitor:
    """Raises:
    InvalidInput: naming the field that is not as a monitor's must be.
    """
    check_monitor_name(monitor.name)
    parse_model_ref(monitor.model)
    check_digest(monitor.reference)
    window = check_int64(monitor.window_seconds, "window_seconds")
    if not 1 <= window <= _LONGEST_WINDOW:
        raise InvalidInput(f"window_seconds: expected 1 to {_LONGEST_WINDOW} (a year), "
                           f"got {window}")  # fmt: skip
    for column in (*monitor.features, *monitor.choices):
        if not isinstance(column, str) or not _COLUMN.match(column):
            raise InvalidInput(f"features: {column!r} is no column name (1 to 250 characters)")
    for column, choice in monitor.choices.items():
        if choice.threshold is not None and not (
            isinstance(choice.threshold, int | float) and math.isfinite(choice.threshold)
        ):
            raise InvalidInput(f"choices[{column!r}].threshold: expected a finite number, "
                               f"got {choice.threshold!r}")  # fmt: skip
    if not (isinstance(monitor.share, int | float) and 0 < monitor.share <= 1):
        raise InvalidInput(f"share: expected a number above 0 and at most 1, got {monitor.share!r}")
    if monitor.on_drift is not None:
        check_action(monitor.on_drift, "on_drift")
    if monitor.degraded_when is not None:
        parse_condition(monitor.degraded_when, "degraded_when")
    if monitor.on_degradation is not None:
        check_action(monitor.on_degradation, "on_degradation")
        if monitor.degraded_when is None:
            raise InvalidInput("on_degradation: say when the model has degraded too "
                               "(degraded_when: 'accuracy < 0.85')")  # fmt: skip
    for alert in monitor.alerts:
        check_alert(alert)
    if monitor.state not in STATES:
        raise InvalidInput(f"state: expected one of {', '.join(STATES)}, got {monitor.state!r}")
    return monitor


def check_action(action: str, field_name: str) -> tuple[str, str]:
    """The kind of an action and what it names: ``retrain:PIPELINE``.

    Raises:
        InvalidInput: naming the field and the forms an action takes.
    """
    kind, _, target = action.partition(":") if isinstance(action, str) else ("", "", "")
    if kind not in ACTIONS or not target or not _PIPELINE.match(target):
        raise InvalidInput(f"{field_name}: expected retrain:PIPELINE (a pipeline's name, or "
                           f"module:attribute), got {action!r}")  # fmt: skip
    return kind, target


@dataclass(frozen=True, slots=True)
class Condition:
    """``accuracy < 0.85``: when a window's performance says the model degraded."""

    metric: str
    operator: str
    bound: float

    def holds(self, value: float) -> bool:
        return compares(value, self.operator, self.bound)

    def __str__(self) -> str:
        return f"{self.metric} {self.operator} {self.bound:g}"


def parse_condition(text: object, field_name: str) -> Condition:
    """``"accuracy < 0.85"`` as a Condition.

    Raises:
        InvalidInput: naming the field, the figures it may name and the form it takes.
    """
    found = _CONDITION.match(text) if isinstance(text, str) else None
    if found is None or found.group(1) not in HIGHER_IS_BETTER:
        raise InvalidInput(f"{field_name}: expected a figure ({', '.join(HIGHER_IS_BETTER)}), a "
                           f"comparison and a number, such as 'accuracy < 0.85'; got "
                           f"{text!r:.80}")  # fmt: skip
    operator, bound = comparison(found.group(2), field_name)
    return Condition(found.group(1), operator, bound)


def check_alert(alert: str) -> str:
    """``log``, or ``webhook:URL`` (an http:// or https:// address); returns the URL of a
    webhook, "" for the log.

    Raises:
        InvalidInput: naming ``alerts`` and the forms an alert takes.
    """
    if alert == LOG:
        return ""
    kind, _, url = alert.partition(":") if isinstance(alert, str) else ("", "", "")
    parts = urlsplit(url)
    if kind != WEBHOOK or parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"alerts: expected log or webhook:URL (an http:// or https:// "
                           f"address), got {alert!r}")  # fmt: skip
    return url


def check_window(since: int, until: int) -> tuple[int, int]:
    """Raises:
    InvalidInput: a window that ends before it starts, or a time outside 64 bits.
    """
    check_int64(since, "since")
    check_int64(until, "until")
    if not 0 <= since <= until <= INT64_MAX:
        raise InvalidInput(f"window: expected 0 <= since <= until, got {since} to {until}")
    return since, until


def monitor_to_dict(monitor: Monitor) -> dict[str, Any]:
    return {
        "name": monitor.name, "model": monitor.model, "reference": monitor.reference,
        "window_seconds": monitor.window_seconds, "features": list(monitor.features),
        "choices": {column: {"method": c.method, "threshold": c.threshold}
                    for column, c in monitor.choices.items()},
        "share": monitor.share, "on_drift": monitor.on_drift, "alerts": list(monitor.alerts),
        "state": monitor.state, "degraded_when": monitor.degraded_when,
        "on_degradation": monitor.on_degradation,
        "created_at": monitor.created_at, "created_by": monitor.created_by,
    }  # fmt: skip


def monitor_from_dict(data: Mapping[str, Any]) -> Monitor:
    """Raises:
    InvalidInput: a field missing or not as a monitor's must be.
    """
    try:
        choices = {str(column): ColumnChoice(found.get("method"), found.get("threshold"))
                   for column, found in (data.get("choices") or {}).items()}  # fmt: skip
        return check_monitor(Monitor(
            name=data["name"], model=data["model"], reference=data["reference"],
            window_seconds=data.get("window_seconds", 3600),
            features=tuple(data.get("features") or ()), choices=choices,
            share=data.get("share", 0.5), on_drift=data.get("on_drift"),
            alerts=tuple(data.get("alerts", (LOG,))),
            state=data.get("state", NEW), created_at=data.get("created_at", 0),
            created_by=data.get("created_by", ""), degraded_when=data.get("degraded_when"),
            on_degradation=data.get("on_degradation"),
        ))  # fmt: skip
    except (KeyError, AttributeError, TypeError) as exc:
        raise InvalidInput(f"monitor: malformed ({exc!r})") from exc


def result_to_dict(result: MonitorResult) -> dict[str, Any]:
    return {
        "monitor": result.monitor, "number": result.number, "since": result.since,
        "until": result.until, "rows": result.rows, "state": result.state,
        "drift_share": result.drift_share, "drifted": list(result.drifted),
        "findings": result.findings, "report": result.report,
        "evaluated_at": result.evaluated_at, "evaluated_by": result.evaluated_by,
    }  # fmt: skip


def result_from_dict(data: Mapping[str, Any]) -> MonitorResult:
    return MonitorResult(
        monitor=data["monitor"], since=data["since"], until=data["until"], rows=data["rows"],
        state=data["state"], drift_share=data["drift_share"], drifted=tuple(data["drifted"]),
        findings=data["findings"], report=data["report"], number=data.get("number", 0),
        evaluated_at=data.get("evaluated_at", 0), evaluated_by=data.get("evaluated_by", ""),
    )  # fmt: skip

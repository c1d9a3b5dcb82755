"""Monitors, on SQLite, PostgreSQL and through a Cairn server: made with a reference profiled
once, evaluated window by window, each evaluation numbered and its report kept, labels kept
and found by request id, and bad input refused naming the field — alike on every backend.
Who may read or write a monitor is the integration suite's (``tests/integration``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from cairn.core.monitor import MonitorResult
from cairn.errors import AlreadyExists, InvalidInput, NotFound
from cairn.session import Session

Unique = Callable[[str], str]
FEATURES = ["age", "spend", "visits"]


def _customers(rows: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    table = pd.DataFrame(rng.normal(size=(rows, len(FEATURES))), columns=FEATURES)
    table[["age", "spend"]] += shift
    return table


@pytest.fixture
def model(session: Session, unique: Unique) -> str:
    """A model in production: its name."""
    name = unique("churn")
    train = _customers(1_000, seed=0)
    fitted = LogisticRegression().fit(train, train["age"] > 0)
    version = session.models.register(fitted, name, input_example=train[:5])
    session.registry.set_alias(name, "production", version.version)
    return name


def test_a_monitor_keeps_its_windows_and_their_reports(
    session: Session, unique: Unique, model: str, actor: str
) -> None:
    monitoring, name = session.monitoring, unique("monitor")
    made = monitoring.create(name, f"{model}@production", _customers(2_000, seed=1),
                             window_seconds=600, degraded_when="accuracy < 0.8")  # fmt: skip
    assert (made.state, made.created_by, made.degraded_when) == ("new", actor, "accuracy < 0.8")
    assert monitoring.monitors.get_monitor(name) == made
    with pytest.raises(AlreadyExists):
        monitoring.create(name, f"{model}@production", _customers(100, seed=1))
    drifted = monitoring.run(name, current=_customers(2_000, seed=2, shift=0.5))
    assert (drifted.number, drifted.state, set(drifted.drifted)) == (1, "drift", {"age", "spend"})
    calm = monitoring.run(name, current=_customers(2_000, seed=3))
    assert (calm.number, calm.state, calm.evaluated_by) == (2, "ok", actor)
    assert [r.number for r in monitoring.results(name)] == [1, 2]
    report = monitoring.report(name, 1)
    assert (report["state"], report["rows"], report["monitor"]) == ("drift", 2_000, name)
    (status,) = [s for s in monitoring.status() if s.monitor.name == name]
    assert (status.monitor.state, status.last.number if status.last else None) == ("ok", 2)


def test_labels_are_kept_and_found_by_request_id(session: Session, model: str) -> None:
    monitoring = session.monitoring
    ids = [f"r{i}" for i in range(12_000)]  # more than one call carries
    assert monitoring.log_labels(model, ids, [i % 2 for i in range(12_000)]) == 12_000
    monitoring.log_labels(model, ["r1"], [0])  # the later label stands
    found = monitoring.monitors.labels(model, ["r0", "r1", "r3", "unknown"])
    assert found == {"r0": "0", "r1": "0", "r3": "1"}
    # What reads labels back parses each: one that is no label's JSON text is refused.
    for text in ("{{", "null", '{"a": 1}', "NaN", "[]"):
        with pytest.raises(InvalidInput, match=r"labels\[1\]: expected the JSON text"):
            monitoring.monitors.log_labels(model, [("new-5", "1"), ("new-6", text)])
    assert monitoring.monitors.labels(model, ["new-5", "new-6"]) == {}


def test_bad_monitors_are_refused_naming_the_field(
    session: Session, unique: Unique, model: str
) -> None:
    monitoring, name = session.monitoring, unique("monitor")
    reference = _customers(100, seed=1)
    with pytest.raises(InvalidInput, match="window_seconds"):
        monitoring.create(name, f"{model}@production", reference, window_seconds=0)
    with pytest.raises(InvalidInput, match="degraded_when: expected a figure"):
        monitoring.create(name, f"{model}@production", reference, degraded_when="loss > 1")
    with pytest.raises(NotFound, match="not found"):
        monitoring.create(name, f"{unique('nobody')}@production", reference)
    with pytest.raises(NotFound, match=f"monitor {name!r}"):
        monitoring.run(name, current=reference)
    assert [m for m in monitoring.monitors.list_monitors() if m.name == name] == []


def test_an_evaluation_or_action_not_as_a_monitors_is_refused(
    session: Session, unique: Unique, model: str
) -> None:
    monitoring, name = session.monitoring, unique("monitor")
    made = monitoring.create(name, f"{model}@production", _customers(100, seed=1))
    good = MonitorResult(name, 0, 10, 100, "ok", 0.0, (), 0, made.reference)
    refusals = [
        (dataclasses.replace(good, state="fine"), "state: expected one of new, ok, drift"),
        (dataclasses.replace(good, drift_share=2.0), "drift_share"),
        (dataclasses.replace(good, since=20), "window: expected 0 <= since <= until"),
    ]
    for result, said in refusals:
        with pytest.raises(InvalidInput, match=said):
            monitoring.monitors.record_result(result)
    with pytest.raises(InvalidInput, match="action: expected retrained or retrain_failed"):
        monitoring.monitors.record_action(name, "deleted", {})
    assert monitoring.results(name) == []
    assert monitoring.monitors.record_result(good).number == 1

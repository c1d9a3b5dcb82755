"""Monitors: made with a reference profiled once, evaluated window by window — a file or
the model's logged traffic — each result kept, numbered, its state changes audited, and
refused to whoever may not read or write the model."""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry
from sklearn.linear_model import LogisticRegression
from sqlalchemy import text

import cairn
from cairn import sdk
from cairn.core.access import Role
from cairn.core.actor import acting_as
from cairn.core.monitor import ColumnChoice
from cairn.errors import AlreadyExists, InvalidInput, NotFound, PermissionDenied
from cairn.monitoring.schedule import MonitorGauges, Scheduler, due
from cairn.releases.webhooks import signature
from cairn.serving.payloads import PayloadLog
from cairn.stores.metadata.audit import AuditLog, EventQuery
from cairn.stores.metadata.identity import IdentityStore
from webhook_receiver import receiving

FEATURES = ["age", "spend", "visits", "tenure"]


def _training(rows: int = 4_000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(rows, len(FEATURES))), columns=FEATURES)
    frame["plan"] = rng.choice(["basic", "plus", "pro"], rows, p=[0.5, 0.3, 0.2])
    return frame


@pytest.fixture
def churn(database_url: str, monkeypatch: pytest.MonkeyPatch) -> pd.DataFrame:
    """A registered model ``churn`` (aliased production) and its training data, on each
    database backend."""
    monkeypatch.setenv("CAIRN_DB", database_url)
    train = _training()
    model = LogisticRegression().fit(train[FEATURES], train["age"] > 0)
    session = sdk.session()
    version = session.models.register(model, "churn", input_example=train[FEATURES][:5])
    session.registry.set_alias("churn", "production", version.version)
    return train


def _audited(action: str) -> list[dict[str, object]]:
    events = AuditLog(sdk.session().database.engine).events(EventQuery(limit=1000))  # type: ignore[attr-defined]
    return [orjson.loads(e.content.payload) for e in events if e.content.action == action]


def test_a_shifted_window_drifts_and_a_like_one_comes_back_to_ok(churn: pd.DataFrame) -> None:
    monitoring = sdk.session().monitoring
    made = monitoring.create("churn-prod", "churn@production", churn, window_seconds=600)
    assert (made.state, made.window_seconds) == ("new", 600)
    shifted = _training(seed=1)
    for column in ("age", "spend", "visits"):
        shifted[column] += 0.5  # half a standard deviation
    drifted = monitoring.run("churn-prod", current=shifted)
    assert drifted.state == "drift"
    assert drifted.number == 1
    assert set(drifted.drifted) == {"age", "spend", "visits"}
    assert drifted.drift_share == pytest.approx(3 / 5)
    calm = monitoring.run("churn-prod", current=_training(seed=2))
    assert (calm.state, calm.drifted, calm.number) == ("ok", (), 2)
    assert [r.state for r in monitoring.results("churn-prod")] == ["drift", "ok"]
    # Each change of state is in the audit trail, naming the evaluation that made it.
    changes = _audited("monitor.state_changed")
    assert [(c["from"], c["to"], c["result"]) for c in changes] == [("new", "drift", 1),
                                                                  ("drift", "ok", 2)]  # fmt: skip
    (status,) = monitoring.status()
    assert (status.monitor.state, status.last.number if status.last else None) == ("ok", 2)


def test_a_change_of_state_is_posted_to_the_monitors_webhook_signed(
    churn: pd.DataFrame, caplog: pytest.LogCaptureFixture
) -> None:
    session = sdk.session()
    secret = "s" * 24
    with receiving() as (url, received):
        alerts = ("log", f"webhook:{url}")
        session.monitoring.create("churn-prod", "churn@production", churn, alerts=alerts,
                                  alert_secret=secret)  # fmt: skip
        shifted = _training(seed=1)
        shifted["age"] += 1.0
        shifted["spend"] += 1.0
        shifted["visits"] += 1.0
        with caplog.at_level("WARNING", logger="cairn.monitoring.service"):
            session.monitoring.run("churn-prod", current=shifted)
        session.monitoring.run("churn-prod", current=shifted)  # still drifting: no news
        session.monitoring.run("churn-prod", current=_training(seed=2))
        received.wait_for(2)
    events = [(headers["X-Cairn-Event"], orjson.loads(body)) for headers, body in received.received]
    assert [(event, body["from"], body["to"]) for event, body in events] == [
        ("monitor.drift", "new", "drift"), ("monitor.ok", "drift", "ok")]  # fmt: skip
    assert set(events[0][1]["drifted"]) == {"age", "spend", "visits"}
    headers, body = received.received[0]
    assert headers["X-Cairn-Signature-256"] == signature(secret, body)
    assert "monitor churn-prod: new -> drift" in caplog.text
    # A release's webhooks list and events do not include a monitor's own.
    assert session.releases.list_webhooks() == []


def test_a_webhook_alert_needs_a_secret_and_an_address(churn: pd.DataFrame) -> None:
    monitoring = sdk.session().monitoring
    with pytest.raises(InvalidInput, match="alert secret"):
        monitoring.create("m", "churn@production", churn, alerts=("webhook:http://h/x",))
    with pytest.raises(InvalidInput, match="alerts: expected log or webhook:URL"):
        monitoring.create("m", "churn@production", churn, alerts=("webhook:file:///etc/passwd",),
                          alert_secret="s" * 20)  # fmt: skip


def test_the_report_holds_each_columns_drift_findings_and_distributions(
    churn: pd.DataFrame,
) -> None:
    monitoring = sdk.session().monitoring
    monitoring.create("churn-prod", "churn@production", churn,
                      choices={"tenure": ColumnChoice("psi", 0.2)})  # fmt: skip
    current = _training(seed=3)
    current["spend"] = current["spend"] * 3 + 10  # far out of the reference's range
    current.loc[: len(current) // 5, "visits"] = np.nan  # a fifth missing: a quality finding
    current["plan"] = np.where(np.arange(len(current)) % 4 == 0, "enterprise", current["plan"])
    monitoring.run("churn-prod", current=current)
    report = monitoring.report("churn-prod")
    columns = {c["column"]: c for c in report["drift"]["columns"]}
    assert columns["tenure"]["method"] == "psi"
    assert columns["tenure"]["threshold"] == 0.2
    assert columns["spend"]["drifted"]
    assert not columns["age"]["drifted"]
    kinds = {(f["column"], f["kind"]) for f in report["findings"]}
    assert {("spend", "out_of_range"), ("visits", "missing_rate"),
            ("plan", "unseen_category")} <= kinds  # fmt: skip
    spend = report["distributions"]["spend"]
    assert sum(spend["reference"]) == pytest.approx(1.0, abs=1e-6)
    assert spend["outside_range"] > 0.5
    assert report["distributions"]["plan"]["categories"][-1] == "other"
    assert [h["number"] for h in report["history"]] == [1]


def test_a_window_of_logged_traffic_is_evaluated_without_a_file(churn: pd.DataFrame) -> None:
    session = sdk.session()
    session.monitoring.create("churn-prod", "churn@production", churn[FEATURES],
                              window_seconds=3600)  # fmt: skip
    log = PayloadLog(session.registry, session.artifacts, flush_seconds=0.1)
    shifted = _training(rows=600, seed=4)[FEATURES]
    shifted["age"] += 1.0
    for index, row in enumerate(shifted.to_dict(orient="records")):
        log.record("churn", 1, f"r{index}", [row], [1])
    log.close()
    found = session.monitoring.run("churn-prod")
    assert found.rows == 600
    assert "age" in found.drifted
    assert "spend" not in found.drifted
    # A window before any traffic holds no rows and keeps the monitor's state.
    empty = session.monitoring.run("churn-prod", since=0, until=1_000)
    assert (empty.rows, empty.state) == (0, found.state)


def test_malformed_monitors_and_windows_are_refused_naming_the_field(
    churn: pd.DataFrame, tmp_path: Path
) -> None:
    monitoring = sdk.session().monitoring
    refusals = [
        ({"name": "bad name!"}, "monitor name"),
        ({"model": "nobody@production"}, "model 'nobody' not found"),
        ({"window_seconds": 0}, "window_seconds"),
        ({"features": ("age", "income")}, "features: 'income'"),
        ({"share": 1.5}, "share"),
        ({"on_drift": "deploy:everything"}, "on_drift"),
        ({"degraded_when": "loss > 2"}, "degraded_when: expected a figure"),
        ({"on_degradation": "retrain:retrain"}, "on_degradation: say when"),
        ({"reference": tmp_path / "absent.csv"}, "reference: no file"),
        ({"reference": np.zeros(3)}, "reference: expected a table"),
    ]
    for change, said in refusals:
        asked = {"name": "m", "model": "churn@production", "reference": churn} | change
        with pytest.raises((InvalidInput, NotFound), match=said):
            monitoring.create(**asked)  # type: ignore[arg-type]
    assert monitoring.status() == []  # nothing half-made
    monitoring.create("m", "churn@production", churn)
    with pytest.raises(AlreadyExists):
        monitoring.create("m", "churn@production", churn)
    with pytest.raises(InvalidInput, match="window"):
        monitoring.run("m", since=10, until=5)
    with pytest.raises(NotFound, match="monitor 'other'"):
        monitoring.run("other")
    with pytest.raises(NotFound, match="no evaluation yet"):
        monitoring.report("m")
    (tmp_path / "notes.txt").write_text("age\n1\n")
    with pytest.raises(InvalidInput, match=r"current: notes.txt: expected a .csv or .parquet"):
        monitoring.run("m", current=tmp_path / "notes.txt")


def test_a_tampered_reference_is_refused_and_nothing_recorded(churn: pd.DataFrame) -> None:
    session = sdk.session()
    session.monitoring.create("m", "churn@production", churn)
    forged = {"format": "cairn-reference/1", "columns": {"age": {"kind": "numeric", "count": -3}}}
    digest = session.artifacts.put_stream(io.BytesIO(orjson.dumps(forged))).digest
    engine = session.database.engine  # type: ignore[attr-defined]
    with engine.begin() as conn:  # someone with the database's password edits the row
        definition = orjson.loads(conn.execute(text("SELECT definition FROM monitors")).scalar())
        conn.execute(text("UPDATE monitors SET definition = :d"),
                     {"d": orjson.dumps({**definition, "reference": digest}).decode()})  # fmt: skip
    with pytest.raises(InvalidInput, match="count"):
        session.monitoring.run("m", current=churn)
    assert session.monitoring.results("m") == []


def test_monitors_are_the_models_readers_and_writers_own(churn: pd.DataFrame) -> None:
    session = sdk.session()
    session.monitoring.create("churn-prod", "churn@production", churn)
    identity = IdentityStore(session.database.engine)  # type: ignore[attr-defined]
    identity.add_project("fraud")
    for user, project, role in (("vera", "default", Role.VIEWER),
                                ("otto", "fraud", Role.MAINTAINER)):  # fmt: skip
        identity.add_user(user)
        identity.set_role(project, user, role)
    monitors = session.monitoring.monitors
    with acting_as("vera", principal=identity.principal("vera")):
        assert [m.name for m in monitors.list_monitors()] == ["churn-prod"]  # may read
        with pytest.raises(PermissionDenied):
            session.monitoring.run("churn-prod", current=churn)
    with acting_as("otto", principal=identity.principal("otto")):
        assert monitors.list_monitors() == []  # another project's: not there
        with pytest.raises(NotFound):
            monitors.get_monitor("churn-prod")
        with pytest.raises(NotFound):
            session.monitoring.run("churn-prod", current=churn)
    assert session.monitoring.results("churn-prod") == []  # nothing was recorded for them


def test_a_window_of_a_million_rows_goes_through_the_whole_path(churn: pd.DataFrame) -> None:
    """A window as large as the benchmark's (benchmarks/drift.py times it): reference read
    back, drift, quality, distributions and the report stored, nothing per row in Python."""
    monitoring = sdk.session().monitoring
    monitoring.create("big", "churn@production", churn)
    rng = np.random.default_rng(5)
    rows = 1_000_000
    current = {name: rng.normal(size=rows) for name in FEATURES}
    current["plan"] = rng.choice(np.array(["basic", "plus", "pro"]), rows, p=[0.5, 0.3, 0.2])
    found = monitoring.run("big", current=current)
    assert found.rows == rows
    assert found.state == "ok"
    assert found.drifted == ()


def test_due_monitors_are_evaluated_on_their_schedule_and_shown_as_gauges(
    churn: pd.DataFrame,
) -> None:
    session = sdk.session()
    session.monitoring.create("churn-prod", "churn@production", churn[FEATURES],
                              window_seconds=3600)  # fmt: skip
    log = PayloadLog(session.registry, session.artifacts, flush_seconds=0.1)
    shifted = _training(rows=800, seed=6)[FEATURES]
    shifted["age"] += 1.0
    shifted["spend"] += 1.0
    shifted["visits"] += 1.0
    for index, row in enumerate(shifted.to_dict(orient="records")):
        log.record("churn", 1, f"r{index}", [row], [1])
    log.close()
    registry = CollectorRegistry()
    scheduler = Scheduler(session.monitoring, 0.1, MonitorGauges(registry)).start()
    try:
        deadline = time.monotonic() + 30
        while registry.get_sample_value("cairn_monitor_drifting", {"monitor": "churn-prod"}) != 1:
            assert time.monotonic() < deadline, "the scheduler did not evaluate the monitor"
            time.sleep(0.05)
    finally:
        scheduler.stop()
    value = registry.get_sample_value
    assert value("cairn_dataset_drift_share", {"model": "churn@production"}) == 0.75
    assert value("cairn_feature_drifted", {"model": "churn@production", "feature": "age"}) == 1
    assert value("cairn_feature_drifted", {"model": "churn@production", "feature": "tenure"}) == 0
    assert value("cairn_monitor_window_rows", {"monitor": "churn-prod"}) == 800
    # Evaluated once: its window (an hour) has not passed again since.
    assert [r.number for r in session.monitoring.results("churn-prod")] == [1]
    assert due(session.monitoring.status(), int(time.time() * 1000)) == []
    assert due(session.monitoring.status(), int(time.time() * 1000) + 3_600_000) == ["churn-prod"]


def test_late_labels_give_a_windows_realised_performance_with_its_coverage(
    churn: pd.DataFrame,
) -> None:
    session = sdk.session()
    session.monitoring.create("churn-prod", "churn@production", churn[FEATURES])
    log = PayloadLog(session.registry, session.artifacts, flush_seconds=0.1)
    rows = _training(rows=400, seed=8)[FEATURES].to_dict(orient="records")
    for index, row in enumerate(rows):  # one-row requests; the model answers 1 for all
        log.record("churn", 1, f"r{index}", [row], [1])
    log.record("churn", 1, "pair", rows[:2], [1, 0])  # a request of two rows
    log.close()
    ids = [f"r{i}" for i in range(300)]  # three quarters of them labelled so far
    truth = [1 if i % 4 else 0 for i in range(300)]  # three quarters right
    assert cairn.monitoring.log_labels("churn", ids, truth) == 300
    cairn.monitoring.log_labels("churn", ["pair"], [[1, 1]])  # one right, one wrong
    cairn.monitoring.log_labels("churn", ["r0"], [1])  # a correction: the later label stands
    session.monitoring.run("churn-prod")
    found = session.monitoring.report("churn-prod")["performance"]
    assert found["labelled"] == 302
    assert found["coverage"] == pytest.approx(302 / 402)
    assert found["realised"]["accuracy"] == pytest.approx((225 + 1 + 1) / 302)


def test_a_window_whose_performance_meets_the_condition_is_degraded(
    churn: pd.DataFrame,
) -> None:
    monitoring = sdk.session().monitoring
    monitoring.create("churn-prod", "churn@production", churn[FEATURES],
                      degraded_when="accuracy < 0.8")  # fmt: skip
    window = _training(rows=500, seed=9)[FEATURES]  # the inputs as in training: no drift
    window["prediction"] = 1
    window["label"] = [1 if i % 10 < 7 else 0 for i in range(500)]  # 70% right
    found = monitoring.run("churn-prod", current=window)
    assert (found.state, found.drifted) == ("degraded", ())
    judged = monitoring.report("churn-prod")["degradation"]
    assert judged == {"condition": "accuracy < 0.8", "value": pytest.approx(0.7),
                      "kind": "realised", "labelled": 500, "degraded": True}  # fmt: skip
    window["label"] = 1  # all right now
    assert monitoring.run("churn-prod", current=window).state == "ok"
    # Before labels come, a calibrated model's confidence estimates the accuracy: answers
    # near 0.5 are right about half the time.
    unsure = _training(rows=500, seed=10)[FEATURES]
    unsure["prediction"] = np.random.default_rng(3).uniform(0.4, 0.6, 500)
    assert monitoring.run("churn-prod", current=unsure).state == "degraded"
    judged = monitoring.report("churn-prod")["degradation"]
    assert (judged["kind"], judged["labelled"]) == ("estimated", 0)
    assert judged["value"] == pytest.approx(0.55, abs=0.02)
    changes = [(c["from"], c["to"]) for c in _audited("monitor.state_changed")]
    assert changes == [("new", "degraded"), ("degraded", "ok"), ("ok", "degraded")]


def test_a_reference_is_read_from_the_data_version_the_model_was_trained_on(
    churn: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the project the data is versioned in
    sdk.close()
    session = sdk.session()
    churn.to_parquet(tmp_path / "customers.parquet")
    session.data.add(tmp_path / "customers.parquet", name="customers")
    made = session.monitoring.create("churn-prod", "churn@production", "customers@1")
    from_file = session.monitoring.create("churn-file", "churn@production", churn)
    assert made.reference == from_file.reference  # the same profile, from the same data
    (tmp_path / "two").mkdir()
    for part in ("a", "b"):
        churn.to_csv(tmp_path / "two" / f"{part}.csv", index=False)
    session.data.add(tmp_path / "two", name="split")
    with pytest.raises(InvalidInput, match="expected a data version of one CSV or Parquet file"):
        session.monitoring.create("churn-split", "churn@production", "split@1")
    with pytest.raises(NotFound):
        session.monitoring.create("churn-none", "churn@production", "nothing@1")


def test_labels_are_checked_where_they_enter(churn: pd.DataFrame) -> None:
    monitoring = sdk.session().monitoring
    for ids, labels, said in (
        (["a", "b"], [1], "1 labels for 2 request ids"),
        (["a b\n"], [1], r"request_ids\[0\]: expected 1 to 128 visible ASCII"),
        ([""], [1], r"request_ids\[0\]: expected the request's id"),
        (["a"], [{"nested": 1}], r"labels\[0\]: expected a class"),
        (["a"], [float("nan")], r"labels\[0\]"),
        (["a"], [True], r"labels\[0\]"),
    ):
        with pytest.raises(InvalidInput, match=said):
            monitoring.log_labels("churn", ids, labels)
    with pytest.raises(NotFound):
        monitoring.log_labels("fraud", ["a"], [1])

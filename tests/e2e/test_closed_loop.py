"""The closed loop as a user sets it up: a monitor on ``churn@production`` whose drift runs
the retraining pipeline, registers a new version and promotes it through production's
gates — each step in ``cairn envs history`` and ``cairn audit log``, linked to the window
that caused it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from server_process import free_port

FLOW = """
import pandas as pd
import cairn
from cairn import pipeline, step
from sklearn.linear_model import LogisticRegression

FEATURES = ["age", "spend", "visits"]

@step
def load(ref: str = "customers@latest"):
    return pd.read_parquet(cairn.data.get(ref))

@step(register="churn")
def train(table):
    return LogisticRegression().fit(table[FEATURES], table["churned"])

@pipeline
def retrain(ref: str = "customers@latest"):
    train(load(ref))

@step(register="churn")
def train_mislabelled(table):
    # A retrain gone wrong: the labels joined to the wrong customers.
    shuffled = table["churned"].sample(frac=1.0, random_state=0).to_numpy()
    return LogisticRegression().fit(table[FEATURES], shuffled)

@pipeline
def retrain_mislabelled(ref: str = "customers@latest"):
    train_mislabelled(load(ref))
"""

POLICY = """\
# production: a version enters as soon as its gates pass
auto_promote: true
gates:
  - no_unsafe_pickle: true
"""


def cairn(project: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "cairn", *args], capture_output=True,
                          text=True, timeout=180, cwd=project, env=os.environ.copy())  # fmt: skip
    if ok:
        assert done.returncode == 0, done.stderr
    return done


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    (folder / ".cairn").mkdir(parents=True)
    (folder / "flow.py").write_text(FLOW)
    (folder / "cairn.yaml").write_text(
        "pipelines:\n  retrain: flow:retrain\n  retrain-mislabelled: flow:retrain_mislabelled\n"
    )
    (folder / "production.yaml").write_text(POLICY)
    _table(shift=0.0).to_parquet(folder / "train.parquet")
    _table(shift=1.0).drop(columns="churned").to_csv(folder / "drifted.csv", index=False)
    return folder


def _table(shift: float, seed: int = 0) -> pd.DataFrame:
    """Customers; ``shift`` moves age and spend by that many standard deviations."""
    rng = np.random.default_rng(seed)
    table = pd.DataFrame(rng.normal(size=(2_000, 3)), columns=["age", "spend", "visits"])
    table["churned"] = (table["age"] + rng.normal(size=len(table)) > 0).astype(int)
    table[["age", "spend"]] += shift
    return table


def _version_data(project: Path, table: pd.DataFrame) -> None:
    """The customers data set as the pipeline reads it (``customers@latest``)."""
    table.to_parquet(project / "customers.parquet")
    cairn(project, "data", "add", "customers.parquet", "--name", "customers")


def test_drift_retrains_and_the_new_version_is_promoted_through_the_gates(project: Path) -> None:
    _version_data(project, _table(shift=0.0))
    cairn(project, "run", "retrain")  # version 1
    cairn(project, "envs", "create", "production", "--policy", "production.yaml")
    cairn(project, "promote", "churn/1", "--to", "production", "--reason", "first release")
    cairn(project, "monitor", "create", "churn-prod", "--model", "churn@production",
          "--reference", "train.parquet", "--on-drift", "retrain:retrain")  # fmt: skip
    calm = json.loads(cairn(project, "monitor", "run", "churn-prod", "--current",
                            "train.parquet", "--json").stdout)  # fmt: skip
    assert (calm["state"], calm["retrained"]) == ("ok", None)
    _version_data(project, _table(shift=1.0, seed=1))  # what customers look like now
    found = json.loads(cairn(project, "monitor", "run", "churn-prod", "--current",
                             "drifted.csv", "--json").stdout)  # fmt: skip
    assert found["state"] == "drift"
    retrained = found["retrained"]
    assert (retrained["pipeline"], retrained["version"]) == ("retrain", "churn/2")
    assert retrained["request_state"] == "deployed"
    # production runs version 2 now, and its history says why.
    history = json.loads(cairn(project, "envs", "history", "production", "--json").stdout)
    latest = history[0]
    assert (latest["model"], latest["version"], latest["previous"]) == ("churn", 2, 1)
    assert "retrained by monitor churn-prod: window 2 drifted (age, spend)" in latest["reason"]
    # The audit trail links the change of state, the retrain and the release.
    events = json.loads(cairn(project, "audit", "log", "--json").stdout)
    actions = [e["action"] for e in events]
    drifted_at = actions.index("monitor.state_changed", actions.index("monitor.created") + 1)
    retrain = next(e for e in events if e["action"] == "monitor.retrained")
    assert retrain["payload"]["request_id"] == retrained["request_id"]
    assert drifted_at < actions.index("monitor.retrained")
    # Still drifting the next window: no second retrain.
    again = json.loads(cairn(project, "monitor", "run", "churn-prod", "--current",
                             "drifted.csv", "--json").stdout)  # fmt: skip
    assert (again["state"], again["retrained"]) == ("drift", None)


def test_a_degraded_model_is_retrained_before_its_inputs_drift(project: Path) -> None:
    _version_data(project, _table(shift=0.0))
    cairn(project, "run", "retrain")
    cairn(project, "envs", "create", "production", "--policy", "production.yaml")
    cairn(project, "promote", "churn/1", "--to", "production", "--reason", "first release")
    cairn(project, "monitor", "create", "churn-prod", "--model", "churn@production",
          "--reference", "train.parquet", "--degraded-when", "accuracy < 0.75",
          "--on-degradation", "retrain:retrain")  # fmt: skip
    # The customers look as before, but what makes them churn changed: the labels that came
    # in for the model's answers disagree with a third of them.
    window = _table(shift=0.0)  # the very customers it was trained on
    window["prediction"] = (window["age"] > 0).astype(int)
    window["label"] = np.where(np.arange(len(window)) % 3 == 0, 1 - window["prediction"],
                               window["prediction"])  # fmt: skip
    window.drop(columns="churned").to_csv(project / "labelled.csv", index=False)
    _version_data(project, _table(shift=0.0, seed=5))  # the data it retrains on
    found = json.loads(cairn(project, "monitor", "run", "churn-prod", "--current",
                             "labelled.csv", "--json").stdout)  # fmt: skip
    assert (found["state"], found["drifted"]) == ("degraded", [])
    assert (found["retrained"]["version"], found["retrained"]["request_state"]) == (
        "churn/2", "deployed")  # fmt: skip
    history = json.loads(cairn(project, "envs", "history", "production", "--json").stdout)
    assert history[0]["reason"].startswith(
        "retrained by monitor churn-prod: window 1 degraded (accuracy < 0.75: 0.6"
    )
    assert "realised on 2000 labels" in history[0]["reason"]
    events = json.loads(cairn(project, "audit", "log", "--json").stdout)
    retrained = next(e["payload"] for e in events if e["action"] == "monitor.retrained")
    assert retrained["on_degradation"] == "retrain:retrain"


def test_a_retrain_that_fails_is_recorded_and_the_evaluation_stands(project: Path) -> None:
    _version_data(project, _table(shift=0.0))
    cairn(project, "run", "retrain")
    cairn(project, "monitor", "create", "churn-prod", "--model", "churn@latest",
          "--reference", "train.parquet", "--on-drift", "retrain:nothing-by-that-name")  # fmt: skip
    found = cairn(project, "monitor", "run", "churn-prod", "--current", "drifted.csv")
    assert "drift" in found.stdout
    assert "nothing-by-that-name" in found.stderr
    events = json.loads(cairn(project, "audit", "log", "--json").stdout)
    failed = [e["payload"] for e in events if e["action"] == "monitor.retrain_failed"]
    assert len(failed) == 1
    assert failed[0]["window"] == 1
    status = json.loads(cairn(project, "monitor", "status", "--json").stdout)
    assert status[0]["monitor"]["state"] == "drift"


CANARY_POLICY = """\
# production: a retrained version serves half the requests until 150 of its answers are
# labelled, and replaces the current one unless its accuracy is 0.05 worse
auto_promote: true
gates:
  - no_unsafe_pickle: true
  - canary: {share: 0.5, requests: 150, metric: accuracy, max_regression: 0.05}
"""


def _live_traffic(project: Path, requests: int, seed: int) -> dict[str, str]:
    """``cairn serve churn@production`` answering ``requests`` customers (then stopped, its
    payload log written), their labels kept as they come in; which version answered each."""
    table = _table(shift=1.0, seed=seed)
    port = free_port()
    log = project / f"serve-{seed}.log"  # a file: a pipe nobody reads fills, and stalls it
    with log.open("wb") as written:
        server = subprocess.Popen([sys.executable, "-m", "cairn", "serve", "churn@production",
                                   "--port", str(port), "--max-batch", "1"], cwd=project,
                                  stdout=written, stderr=written)  # fmt: skip
    base, answered = f"http://127.0.0.1:{port}", {}
    try:
        started = time.monotonic()
        while True:
            try:
                if httpx.get(f"{base}/v2/health/ready").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, log.read_text()
            assert time.monotonic() - started < 60, "the server did not become ready"
            time.sleep(0.1)
        with httpx.Client(base_url=base) as client:
            for index, row in enumerate(
                table.drop(columns="churned")[:requests].to_dict("records")
            ):
                request_id = f"s{seed}-{index}"
                answer = client.post("/invocations", json={"dataframe_records": [row]},
                                     headers={"X-Request-Id": request_id})  # fmt: skip
                assert answer.status_code == 200, answer.text
                answered[request_id] = answer.headers["X-Model-Version"]
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    said = log.read_text()
    assert "Traceback" not in said, said
    labels = pd.DataFrame({"request_id": list(answered), "label": table["churned"][:requests]})
    labels.to_csv(project / "labels.csv", index=False)
    cairn(project, "monitor", "labels", "labels.csv", "--model", "churn")
    return answered


def test_a_retrain_serves_as_a_canary_and_is_promoted_or_rolled_back_on_live_traffic(
    project: Path,
) -> None:
    (project / "production.yaml").write_text(CANARY_POLICY)
    _version_data(project, _table(shift=0.0))
    cairn(project, "run", "retrain")  # version 1: nothing to judge it against, it enters
    cairn(project, "envs", "create", "production", "--policy", "production.yaml")
    cairn(project, "promote", "churn/1", "--to", "production", "--reason", "first release")
    cairn(project, "monitor", "create", "churn-prod", "--model", "churn@production",
          "--reference", "train.parquet", "--on-drift", "retrain:retrain")  # fmt: skip
    _version_data(project, _table(shift=1.0, seed=1))
    found = json.loads(cairn(project, "monitor", "run", "churn-prod", "--current",
                             "drifted.csv", "--json").stdout)  # fmt: skip
    assert (found["retrained"]["version"], found["retrained"]["request_state"]) == (
        "churn/2", "canary")  # fmt: skip
    request = found["retrained"]["request_id"]
    # The server follows the environment: half of the requests go to the canary.
    answered = _live_traffic(project, 400, seed=2)
    assert 120 < sum(v == "churn/2" for v in answered.values()) < 280
    assert set(answered.values()) == {"churn/1", "churn/2"}
    # The traffic was logged by column name: the monitor reads it as its reference names it.
    logged = json.loads(cairn(project, "monitor", "run", "churn-prod", "--since", "2000-01-01",
                              "--json").stdout)  # fmt: skip
    assert logged["rows"] == 400
    assert {"age", "spend"} <= set(logged["drifted"])
    (judged,) = json.loads(cairn(project, "requests", "judge", "--json").stdout)
    assert (judged["id"], judged["state"]) == (request, "deployed"), judged["decision"]
    history = json.loads(cairn(project, "envs", "history", "production", "--json").stdout)
    assert [(d["action"], d["version"], d["previous"]) for d in history] == [
        ("promote", 2, 1), ("canary", 2, 1), ("promote", 1, None)]  # fmt: skip
    assert "canary passed: accuracy" in history[0]["reason"]
    assert "retrained by monitor churn-prod: window 1 drifted" in history[0]["reason"]

    # A second monitor's drift runs a retrain gone wrong: the canary does worse, and is
    # rolled back without anyone stepping in.
    cairn(project, "monitor", "create", "churn-prod-2", "--model", "churn@production",
          "--reference", "train.parquet", "--on-drift", "retrain:retrain-mislabelled")  # fmt: skip
    worse = json.loads(cairn(project, "monitor", "run", "churn-prod-2", "--current",
                             "drifted.csv", "--json").stdout)  # fmt: skip
    assert (worse["retrained"]["version"], worse["retrained"]["request_state"]) == (
        "churn/3", "canary")  # fmt: skip
    answered = _live_traffic(project, 400, seed=3)
    assert set(answered.values()) == {"churn/2", "churn/3"}
    daemon = cairn(project, "monitor", "daemon", "--once")  # judges at every look
    assert "canary churn/3 in production: rolled_back (canary did worse: accuracy" in daemon.stderr
    history = json.loads(cairn(project, "envs", "history", "production", "--json").stdout)
    assert [(d["action"], d["version"], d["previous"]) for d in history[:2]] == [
        ("rollback", 2, 3), ("canary", 3, 2)]  # fmt: skip
    env = json.loads(cairn(project, "envs", "show", "production", "--json").stdout)
    assert env["deployed"] == {"churn": 2}
    events = json.loads(cairn(project, "audit", "log", "--json").stdout)
    actions = [e["action"] for e in events]
    for step in ("monitor.retrained", "release.canary", "release.canary.judged",
                 "release.promote", "release.rollback"):  # fmt: skip
        assert step in actions

"""The closed loop as a user sets it up: a monitor on ``churn@production`` whose drift runs
the retraining pipeline, registers a new version and promotes it through production's
gates — each step in ``cairn envs history`` and ``cairn audit log``, linked to the window
that caused it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

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
    (folder / "cairn.yaml").write_text("pipelines:\n  retrain: flow:retrain\n")
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

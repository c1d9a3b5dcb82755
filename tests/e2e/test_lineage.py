"""Lineage across a pipeline and two data versions: from a registered model back to the
exact data version it was trained on, and from a data version forward to every run and
model version built on it — embedded, through the CLI, as text, JSON, DOT and Mermaid."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

FLOW = """
import numpy as np
import cairn
from cairn import pipeline, step
from sklearn.linear_model import LogisticRegression

@step
def load(ref: str = "customers@latest"):
    rows = cairn.data.get(ref).read_text().split()[1:]
    return np.array([[float(v) for v in row.split(",")] for row in rows])

@step(register="churn")
def train(table):
    return LogisticRegression().fit(table[:, :1], table[:, 1].astype(int))

@step
def evaluate(model, table):
    return {"accuracy": float(model.score(table[:, :1], table[:, 1].astype(int)))}

@pipeline
def churn(ref: str = "customers@latest"):
    table = load(ref)
    evaluate(train(table), table)
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    (folder / ".cairn").mkdir(parents=True)
    (folder / "flow.py").write_text(FLOW)
    (folder / "cairn.yaml").write_text("pipelines:\n  churn: flow:churn\n")
    return folder


def cairn(project: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "cairn", *args], capture_output=True, text=True, timeout=180,
        cwd=project, env=os.environ.copy(), check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def _version(project: Path, rows: str) -> None:
    (project / "customers.csv").write_text("x,y\n" + rows)
    cairn(project, "data", "add", "customers.csv", "--name", "customers")


def _nodes(found: dict[str, object]) -> set[str]:
    return {f"{n['kind']}:{n['id']}" for n in found["nodes"]}  # type: ignore[attr-defined, index]


def test_lineage_from_a_model_to_its_data_and_from_data_to_its_models(project: Path) -> None:
    _version(project, "0,0\n1,1\n0.2,0\n0.9,1\n")
    first = json.loads(cairn(project, "run", "churn", "--json"))
    assert [s["model"] for s in first["steps"] if s["name"] == "train"] == ["churn/1"]
    again = json.loads(cairn(project, "run", "churn", "--json"))  # cached: nothing new
    assert [s["model"] for s in again["steps"] if s["name"] == "train"] == ["churn/1"]
    _version(project, "0,0\n1,1\n0.1,0\n0.8,1\n0.3,0\n")
    cairn(project, "run", "churn")
    versions = json.loads(cairn(project, "models", "versions", "churn", "--json"))
    assert [v["ref"] for v in versions] == ["churn/2", "churn/1"]

    upstream = json.loads(cairn(project, "lineage", "churn/1", "--json"))
    nodes = _nodes(upstream)
    assert "data_version:customers@1" in nodes
    assert "data_version:customers@2" not in nodes
    runs = [n for n in upstream["nodes"] if n["kind"] == "run"]
    assert {r.get("step") for r in runs} >= {"load", "train"}
    pipeline_run = next(r for r in runs if r.get("pipeline") == "churn" and "step" not in r)
    assert "environment" in pipeline_run  # the pipeline run keeps its environment
    assert {(e["relation"]) for e in upstream["edges"]} == {"used", "produced", "part_of"}
    assert "data_version:customers@2" in _nodes(
        json.loads(cairn(project, "lineage", "churn/2", "--json"))
    )

    downstream = json.loads(cairn(project, "lineage", "customers@1", "--downstream", "--json"))
    assert "model_version:churn/1" in _nodes(downstream)
    assert "model_version:churn/2" not in _nodes(downstream)

    tree = cairn(project, "lineage", "churn/1")
    for words in ("lineage of churn/1", "made by run", "step train", "customers@1"):
        assert words in tree
    assert "used by run" in cairn(project, "lineage", "customers@2", "--downstream")
    dot = cairn(project, "lineage", "churn/1", "--dot")
    assert dot.startswith("digraph lineage {")
    assert '[label="produced"]' in dot
    assert cairn(project, "lineage", "churn/1", "--mermaid").startswith("flowchart LR")


def test_a_model_version_is_reproduced_from_the_pipeline_run_that_made_it(
    project: Path,
) -> None:
    _version(project, "0,0\n1,1\n0.2,0\n0.9,1\n")
    cairn(project, "run", "churn")
    _version(project, "0,0\n1,1\n0.1,0\n0.8,1\n0.3,0\n")  # customers@latest moves on
    again = json.loads(cairn(project, "reproduce", "churn@latest", "--json"))
    assert again["reproduced"] is True
    assert {s["step"]: s["verdict"] for s in again["steps"]} == {
        "load": "identical", "train": "identical", "evaluate": "identical"
    }  # fmt: skip
    versions = json.loads(cairn(project, "models", "versions", "churn", "--json"))
    assert [v["ref"] for v in versions] == ["churn/1"]  # a reproduction registers nothing

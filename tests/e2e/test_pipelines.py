"""Pipelines as a user runs them: ``cairn run`` in a project folder, a process per run
(as each real run is), its output, exit code and what it recorded."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

FLOW = """
import numpy as np
from cairn import pipeline, step
from helpers import scale

@step
def load(n: int):
    return list(range(n))

@step
def transform(values, factor: float = 2.0):
    return np.array(scale(values, factor))

@step
def evaluate(array):
    return {"total": float(array.sum()), "count": len(array)}

@pipeline
def churn(n: int = 5, factor: float = 2.0):
    values = load(n)
    array = transform(values, factor=factor)
    evaluate(array)
"""

HELPERS = """
def scale(values, factor):
    return [v * factor for v in values]
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    (folder / ".cairn").mkdir(parents=True)
    (folder / "flow.py").write_text(FLOW)
    (folder / "helpers.py").write_text(HELPERS)
    (folder / "cairn.yaml").write_text("pipelines:\n  churn: flow:churn\n")
    return folder


def cairn(project: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "cairn", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=project,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    if ok:
        assert done.returncode == 0, done.stderr
    return done


def states(project: Path, *args: str) -> dict[str, str]:
    done = json.loads(cairn(project, "run", "churn", "--json", *args).stdout)
    return {step["name"]: step["state"] for step in done["steps"]}


def test_a_helper_in_another_module_invalidates_the_cache_and_an_unrelated_file_does_not(
    project: Path,
) -> None:
    assert states(project) == {"load": "ran", "transform": "ran", "evaluate": "ran"}
    assert states(project) == {"load": "cached", "transform": "cached", "evaluate": "cached"}
    (project / "notes.py").write_text("# a file no step reaches\nVALUE = 1\n")
    (project / "README.md").write_text("changed")
    assert states(project) == {"load": "cached", "transform": "cached", "evaluate": "cached"}
    (project / "helpers.py").write_text(HELPERS.replace("v * factor", "v * factor + 1"))
    assert states(project) == {"load": "cached", "transform": "ran", "evaluate": "ran"}
    assert states(project, "-p", "n=6") == {"load": "ran", "transform": "ran", "evaluate": "ran"}
    forced = states(project, "--force")
    assert set(forced.values()) == {"ran"}


def test_the_output_shows_each_step_and_the_runs_record_it(project: Path) -> None:
    out = cairn(project, "run", "churn", "-p", "n=4").stdout
    assert "churn n=4, factor=2.0" in out
    assert "3 ran, 0 cached" in out
    script = textwrap.dedent(
        """
        import json, cairn
        kind = "tags.`cairn.run.kind` = 'pipeline'"
        [parent] = cairn.search_runs(experiment="churn", filter=kind)
        nested = f"attributes.parent_run_id = '{parent.id}'"
        steps = cairn.search_runs(experiment="churn", filter=nested)
        print(json.dumps({
            "status": parent.status.value, "params": parent.params,
            "metrics": {k: m.value for k, m in parent.metrics.items()},
            "steps": sorted((r.name, r.status.value, r.tags["cairn.step.state"]) for r in steps),
            "commit": parent.git_commit, "id": parent.id,
        }))
        """
    )
    recorded = json.loads(_python(project, script))
    assert recorded["status"] == "FINISHED"
    assert recorded["params"] == {"n": "4", "factor": "2.0"}
    assert recorded["metrics"] == {"total": 12.0, "count": 4.0}  # 2 * (0 + 1 + 2 + 3)
    assert recorded["steps"] == [
        ["evaluate", "FINISHED", "ran"], ["load", "FINISHED", "ran"],
        ["transform", "FINISHED", "ran"],
    ]  # fmt: skip
    shown = cairn(project, "runs", "show", recorded["id"]).stdout
    assert "Child runs" in shown
    rows = [line.split("│") for line in shown.splitlines() if line.count("│") == 6]
    assert [(r[2].strip(), r[4].strip()) for r in rows] == [
        ("load", "ran"), ("transform", "ran"), ("evaluate", "ran"),
    ]  # fmt: skip


def test_a_failing_step_names_itself_with_the_users_traceback_and_a_rerun_resumes(
    project: Path,
) -> None:
    (project / "helpers.py").write_text(
        "def scale(values, factor):\n    raise ValueError('bad factor: ' + str(factor))\n"
    )
    failed = cairn(project, "run", "churn", ok=False)
    assert failed.returncode == 1
    assert "step transform failed: ValueError: bad factor: 2.0" in failed.stderr
    assert 'helpers.py", line 2, in scale' in failed.stderr  # the user's frames …
    assert "cairn/pipelines" not in failed.stderr  # … and not Cairn's
    assert "skipped" in failed.stdout  # evaluate never ran
    (project / "helpers.py").write_text(HELPERS)
    assert states(project) == {"load": "cached", "transform": "ran", "evaluate": "ran"}


def test_a_step_is_retried_with_backoff(project: Path) -> None:
    (project / "flow.py").write_text(
        FLOW.replace(
            "@step\ndef load(n: int):\n    return list(range(n))",
            "@step(retries=2, backoff=0.01)\ndef load(n: int):\n"
            "    import pathlib\n"
            "    tries = pathlib.Path('tries')\n"
            "    tries.write_text(tries.read_text() + 'x' if tries.exists() else 'x')\n"
            "    if len(tries.read_text()) < 3:\n"
            "        raise ConnectionError('flaky source')\n"
            "    return list(range(n))",
        )
    )
    done = json.loads(cairn(project, "run", "churn", "--json").stdout)
    first = done["steps"][0]
    assert (first["name"], first["state"], first["attempts"]) == ("load", "ran", 3)


def test_bad_input_is_one_clear_error_before_any_step_runs(project: Path) -> None:
    cases = {
        ("-p", "bogus=1"): "pipeline churn: unknown parameter 'bogus' (its parameters: n, factor)",
        ("-p", "n=abc"): "pipeline churn: parameter 'n' expects int, got 'abc'",
        ("-p", "n"): "-p 'n': expected NAME=VALUE",
    }
    for args, message in cases.items():
        refused = cairn(project, "run", "churn", *args, ok=False)
        assert message in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr
    missing = cairn(project, "run", "nothing", ok=False)
    assert "pipeline 'nothing': expected a name from cairn.yaml (churn)" in missing.stderr
    (project / "flow.py").write_text(FLOW.replace("load(n)", "load(object())"))
    unhashable = cairn(project, "run", "churn", ok=False)
    assert "step load, argument 'n': a object cannot be part of the step's cache key" in (
        unhashable.stderr
    )
    assert not (project / ".cairn" / "cairn.db").exists() or "ran" not in unhashable.stdout


def test_a_data_version_named_by_a_step_is_part_of_its_key(project: Path) -> None:
    (project / "data.csv").write_text("x\n1\n")
    cairn(project, "data", "add", "data.csv", "--name", "numbers")
    (project / "flow.py").write_text(
        FLOW.replace("def load(n: int):\n    return list(range(n))",
                     "def load(n: int, ref: str = 'numbers@latest'):\n"
                     "    import cairn\n"
                     "    return [int(x) for x in cairn.data.get(ref).read_text().split()[1:]]")
    )  # fmt: skip
    assert states(project)["load"] == "ran"
    assert states(project)["load"] == "cached"
    (project / "data.csv").write_text("x\n1\n2\n")
    cairn(project, "data", "add", "data.csv", "--name", "numbers")  # numbers@2 is the latest
    assert states(project) == {"load": "ran", "transform": "ran", "evaluate": "ran"}


def test_pipelines_are_listed_shown_and_drawn(project: Path) -> None:
    listed = json.loads(cairn(project, "pipelines", "list", "--json").stdout)
    assert listed == [{"name": "churn", "target": "flow:churn"}]
    shown = json.loads(cairn(project, "pipelines", "show", "churn", "--json").stdout)
    assert [(s["name"], s["inputs"], s["params"]) for s in shown["steps"]] == [
        ("load", {}, {"n": 5}),
        ("transform", {"values": "load"}, {"factor": 2.0}),
        ("evaluate", {"array": "transform"}, {}),
    ]
    assert cairn(project, "pipelines", "dag", "churn").stdout.split("\n")[:3] == [
        "load → transform", "transform → evaluate", "evaluate",
    ]  # fmt: skip
    dot = cairn(project, "pipelines", "dag", "churn", "--dot").stdout
    assert '"load" -> "transform" [label="values"];' in dot
    mermaid = cairn(project, "pipelines", "dag", "flow.py:churn", "--mermaid").stdout
    assert "transform -->|array| evaluate" in mermaid


def test_calling_a_pipeline_in_python_runs_it(project: Path) -> None:
    script = textwrap.dedent(
        """
        import json
        from flow import churn
        first = churn(n=3)
        again = churn(n=3)
        print(json.dumps([[s.state for s in r.steps] for r in (first, again)]))
        """
    )
    assert json.loads(_python(project, script)) == [["ran"] * 3, ["cached"] * 3]


def _python(project: Path, script: str, *args: str) -> Any:
    done = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, cwd=project,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


SWEEP = """
from cairn import pipeline, step

@step
def train(lr: float, depth: int):
    return {"val_auc": 1 - (lr - 0.01) ** 2 - (depth - 6) ** 2 / 100}

@pipeline
def tune(lr: float = 0.1, depth: int = 3, note: str = ""):
    train(lr, depth)
"""


def test_a_sweep_runs_trials_as_nested_pipeline_runs_and_tags_the_best(project: Path) -> None:
    (project / "tune.py").write_text(SWEEP)
    args = ["sweep", "tune.py:tune", "--param", "lr=loguniform(1e-4,1e-1)",
            "--param", "depth=int(3,10)", "--trials", "6", "--objective", "val_auc",
            "--seed", "7", "-p", "note=x"]  # fmt: skip
    done = json.loads(cairn(project, *args, "--json").stdout)
    values = [t["value"] for t in done["trials"]]
    assert len(values) == 6
    assert done["best"]["value"] == max(values)
    assert all(3 <= t["params"]["depth"] <= 10 for t in done["trials"])
    script = textwrap.dedent(
        f"""
        import json, cairn
        best = cairn.search_runs(experiment="tune", filter="tags.`cairn.sweep.best` = 'true'")
        trials = cairn.search_runs(
            experiment="tune", filter="attributes.parent_run_id = '{done["run_id"]}'"
        )
        sweep = cairn.get_run("{done["run_id"]}")
        print(json.dumps({{
            "best": [r.id for r in best], "trials": len(trials),
            "note": sorted({{r.params["note"] for r in trials}}),
            "sweep": [sweep.status.value, sweep.params["best.run_id"]],
        }}))
        """
    )
    found = json.loads(_python(project, script))
    assert found["best"] == [done["best"]["run_id"]]
    assert found["trials"] == 6
    assert found["note"] == ["x"]  # fixed parameters reach every trial
    assert found["sweep"] == ["FINISHED", done["best"]["run_id"]]
    again = json.loads(cairn(project, *args, "--json").stdout)  # same seed: same trials
    assert [t["params"] for t in again["trials"]] == [t["params"] for t in done["trials"]]
    unknown = cairn(project, "sweep", "tune.py:tune", "--param", "alpha=uniform(0,1)",
                    "--objective", "val_auc", ok=False)  # fmt: skip
    assert "--param alpha: pipeline tune has no such parameter" in unknown.stderr


DECLARED = """
pipelines:
  prepare:
    params: {rows: 1}
    steps:
      extract:
        cmd: python extract.py ${rows}
        deps: [extract.py, data/raw.csv]
        outs: [data/clean.csv]
      train:
        python: train:fit
        params: {lr: 0.5, source: data/clean.csv}
        deps: [data/clean.csv]
      score:
        python: train:score
        inputs: {model: train}
"""


@pytest.fixture
def declared(project: Path) -> Path:
    (project / "data").mkdir()
    (project / "data" / "raw.csv").write_text("a,b\n1,2\n3,4\n")
    (project / "extract.py").write_text(
        "import sys\nrows = int(sys.argv[1])\n"
        "lines = open('data/raw.csv').read().splitlines()\n"
        "open('data/clean.csv', 'w').write('\\n'.join(lines[: rows + 1]) + '\\n')\n"
    )
    (project / "train.py").write_text(
        "def fit(lr: float, source: str):\n"
        "    return {'rows': len(open(source).read().splitlines()) - 1, 'lr': lr}\n\n"
        "def score(model):\n    return {'score': model['rows'] * model['lr']}\n"
    )
    (project / "cairn.yaml").write_text(DECLARED)
    return project


def _states(project: Path, *args: str) -> dict[str, str]:
    done = json.loads(cairn(project, "run", "prepare", "--json", *args).stdout)
    return {step["name"]: step["state"] for step in done["steps"]}


def test_a_declared_pipeline_runs_commands_and_functions_and_caches_them(
    declared: Path,
) -> None:
    assert _states(declared) == {"extract": "ran", "train": "ran", "score": "ran"}
    assert _states(declared) == {"extract": "cached", "train": "cached", "score": "cached"}
    clean = declared / "data" / "clean.csv"
    assert clean.read_text() == "a,b\n1,2\n"
    assert _states(declared, "-p", "rows=2")["extract"] == "ran"
    assert clean.read_text() == "a,b\n1,2\n3,4\n"
    clean.unlink()
    assert _states(declared) == {"extract": "cached", "train": "cached", "score": "cached"}
    assert clean.read_text() == "a,b\n1,2\n"  # a cached command's output is put back
    (declared / "train.py").write_text(
        (declared / "train.py").read_text().replace("model['lr']", "model['lr'] * 2")
    )
    assert _states(declared) == {"extract": "cached", "train": "cached", "score": "ran"}
    (declared / "data" / "raw.csv").write_text("a,b\n5,6\n")
    assert _states(declared)["extract"] == "ran"  # a dependency changed
    assert cairn(declared, "pipelines", "dag", "prepare").stdout.split("\n")[:2] == [
        "extract → train", "train → score",
    ]  # fmt: skip


def test_a_declared_pipeline_refuses_cycles_and_reports_failed_commands(declared: Path) -> None:
    cyclic = DECLARED.replace("inputs: {model: train}", "inputs: {model: train}\n"
                              "        outs: [data/raw.csv]")  # fmt: skip
    (declared / "cairn.yaml").write_text(cyclic)
    refused = cairn(declared, "run", "prepare", ok=False)
    assert "the steps form a cycle: " in refused.stderr
    assert "extract → train → score → extract" in refused.stderr
    (declared / "cairn.yaml").write_text(DECLARED.replace("python extract.py", "python nope.py"))
    failed = cairn(declared, "run", "prepare", ok=False)
    assert "step extract failed: RuntimeError: the command exited with 2" in failed.stderr
    assert "nope.py" in failed.stderr
    (declared / "cairn.yaml").write_text(
        DECLARED.replace("outs: [data/clean.csv]", "outs: [data/clean.csv, data/x.csv]")
    )
    missing = cairn(declared, "run", "prepare", ok=False)
    assert "step extract did not write its declared output data/x.csv" in missing.stderr
    (declared / "cairn.yaml").write_text(
        DECLARED.replace("python: train:fit", "cmd: x\n        python: train:fit")
    )
    both = cairn(declared, "run", "prepare", ok=False)
    assert "step 'train': expected exactly one of python, cmd" in both.stderr


def _notebook(path: Path, cells: list[tuple[str, list[str]]]) -> None:
    nbformat = pytest.importorskip("nbformat")
    notebook = nbformat.v4.new_notebook()
    for source, tags in cells:
        cell = nbformat.v4.new_code_cell(source)
        cell.metadata["tags"] = tags
        notebook.cells.append(cell)
    nbformat.write(notebook, str(path))


def test_a_notebook_step_runs_with_parameters_and_keeps_the_executed_notebook(
    declared: Path,
) -> None:
    _notebook(declared / "report.ipynb", [
        ("threshold = 0.1", ["parameters"]),
        ("rows = open('data/clean.csv').read().splitlines()[1:]\nprint('rows', len(rows))", []),
        ("assert threshold < 1, 'threshold too high'\n"
         "open('data/report.txt', 'w').write(f'{len(rows)} {threshold}')", []),
    ])  # fmt: skip
    report = (
        "      report:\n        notebook: report.ipynb\n        params: {threshold: 0.5}\n"
        "        deps: [data/clean.csv]\n        outs: [data/report.txt]\n"
    )
    (declared / "cairn.yaml").write_text(DECLARED + report)
    done = json.loads(cairn(declared, "run", "prepare", "--json").stdout)
    states = {s["name"]: (s["state"], s["run_id"]) for s in done["steps"]}
    assert states["report"][0] == "ran"
    assert (declared / "data" / "report.txt").read_text() == "1 0.5"
    run_id = states["report"][1]
    kept = json.loads(cairn(declared, "artifacts", "list", run_id, "notebook", "--json").stdout)
    assert [a["path"] for a in kept] == ["notebook/report.ipynb"]
    cairn(declared, "artifacts", "get", run_id, "notebook", "--to", str(declared / "got"))
    executed = next((declared / "got").rglob("report.ipynb"))
    assert "rows 1" in executed.read_text()  # the outputs are in the kept notebook
    assert _states(declared)["report"] == "cached"

    (declared / "cairn.yaml").write_text(DECLARED + report.replace("0.5", "5"))
    failed = cairn(declared, "run", "prepare", ok=False)
    assert "step report failed: CellFailed: cell 3 failed: AssertionError: threshold too high" in (
        failed.stderr
    )
    assert "assert threshold < 1, 'threshold too high'" in failed.stderr  # the cell's source

    _notebook(declared / "report.ipynb", [("threshold = 0.1", [])])
    refused = cairn(declared, "run", "prepare", ok=False)
    assert "notebook report.ipynb has no cell tagged 'parameters'" in refused.stderr
    assert "ran" not in refused.stdout


NOISY = """
import random
import cairn
from cairn import pipeline, step

@step
def load(ref: str = "numbers@latest"):
    return [int(x) for x in cairn.data.get(ref).read_text().split()[1:]]

@step
def score(values):
    return {"total": float(sum(values)), "noise": 1.0 + random.random() * 1e-6}

@pipeline
def noisy():
    score(load())
"""


def _git(project: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=project, check=True, capture_output=True)


def test_reproduce_reruns_from_the_recorded_commit_and_data_and_compares_outputs(
    project: Path,
) -> None:
    (project / "noisy.py").write_text(NOISY)
    (project / "numbers.csv").write_text("x\n1\n2\n")
    (project / ".gitignore").write_text(".cairn/\n")
    _git(project, "init", "-q")
    _git(project, "-c", "user.name=a", "-c", "user.email=a@b", "add", ".")
    _git(project, "-c", "user.name=a", "-c", "user.email=a@b", "commit", "-qm", "first")
    cairn(project, "data", "add", "numbers.csv", "--name", "numbers")
    recorded = json.loads(cairn(project, "run", "noisy:noisy", "--json").stdout)["run_id"]

    (project / "numbers.csv").write_text("x\n5\n")
    cairn(project, "data", "add", "numbers.csv", "--name", "numbers")  # numbers@2: latest now
    (project / "noisy.py").write_text(NOISY.replace("sum(values)", "sum(values) * 10"))
    strict = cairn(project, "reproduce", recorded, "--json", ok=False)
    assert strict.returncode == 1  # the noise differs, with no tolerance
    found = json.loads(strict.stdout)
    assert found["where"].startswith("a worktree of ")  # not the edited work tree
    verdicts = {s["step"]: s["verdict"] for s in found["steps"]}
    assert verdicts == {"load": "identical", "score": "different"}  # numbers@1, as recorded
    loose = json.loads(cairn(project, "reproduce", recorded, "--tolerance", "1e-3",
                             "--json").stdout)  # fmt: skip
    assert {s["step"]: s["verdict"] for s in loose["steps"]} == {
        "load": "identical", "score": "within tolerance",
    }  # fmt: skip
    assert loose["reproduced"] is True
    plain = cairn(project, "runs", "list", "--experiment", "noisy", "--json").stdout
    not_pipeline = next(r["id"] for r in json.loads(plain)["runs"] if r["name"] == "load")
    refused = cairn(project, "reproduce", not_pipeline, ok=False)
    assert "is not a pipeline run" in refused.stderr


OVERLAP = """
import time
from cairn import pipeline, step

@step
def slow(i: int):
    started = time.time()
    time.sleep(0.4)
    return [started, time.time()]

@step
def spans(a, b, c):
    return {"overlap": float(min(a[1], b[1], c[1]) > max(a[0], b[0], c[0]))}

@pipeline
def fan(seed: int = 0):
    spans(slow(seed + 1), slow(seed + 2), slow(seed + 3))
"""


def test_local_workers_run_independent_steps_at_once(project: Path) -> None:
    (project / "fan.py").write_text(OVERLAP)
    together = json.loads(cairn(project, "run", "fan:fan", "--workers", "3", "--json").stdout)
    assert [s["state"] for s in together["steps"]] == ["ran"] * 4
    apart = json.loads(cairn(project, "run", "fan:fan", "-p", "seed=1", "--json").stdout)
    script = textwrap.dedent(
        f"""
        import json, cairn
        print(json.dumps([cairn.get_run(r).metrics["overlap"].value
                          for r in ("{together["run_id"]}", "{apart["run_id"]}")]))
        """
    )
    assert json.loads(_python(project, script)) == [1.0, 0.0]  # all three at once; in turn


@pytest.mark.slow
def test_the_ray_executor_runs_each_step_as_a_task_with_the_same_cache(project: Path) -> None:
    pytest.importorskip("ray")
    first = json.loads(cairn(project, "run", "churn", "--executor", "ray", "--json").stdout)
    assert [s["state"] for s in first["steps"]] == ["ran"] * 3
    assert first["steps"][2]["format"] == "json"
    assert states(project) == {"load": "cached", "transform": "cached", "evaluate": "cached"}
    (project / "helpers.py").write_text(
        "def scale(values, factor):\n    raise ValueError('on the cluster')\n"
    )
    failed = cairn(project, "run", "churn", "--executor", "ray", ok=False)
    assert "step transform failed: ValueError: on the cluster" in failed.stderr
    assert 'helpers.py", line 2, in scale' in failed.stderr
    unreachable = cairn(project, "run", "churn", "--executor", "ray", "--ray-address",
                        "127.0.0.1:1", ok=False)  # fmt: skip
    assert "--ray-address 127.0.0.1:1: nothing answers there" in unreachable.stderr
    assert " ran " not in unreachable.stdout
    unknown = cairn(project, "run", "churn", "--executor", "spark", ok=False)
    assert "--executor 'spark': expected one of local, ray" in unknown.stderr


def test_lineage_links_each_steps_inputs_to_its_output(project: Path) -> None:
    first = json.loads(cairn(project, "run", "churn", "--json").stdout)
    again = json.loads(cairn(project, "run", "churn", "--json").stdout)  # all cached
    script = textwrap.dedent(
        """
        import json, sys
        import cairn.sdk
        store = cairn.sdk.session().metadata
        runs = json.loads(sys.argv[1])
        print(json.dumps({name: store.get_run_lineage(run) for name, run in runs.items()}))
        """
    )
    for done in (first, again):
        runs = {s["name"]: s["run_id"] for s in done["steps"]}
        output = {s["name"]: s["output"] for s in done["steps"]}
        lineage = json.loads(_python(project, script, json.dumps(runs)))
        assert lineage == {
            "load": [[], [output["load"]]],
            "transform": [[output["load"]], [output["transform"]]],
            "evaluate": [[output["transform"]], [output["evaluate"]]],
        }


def test_a_pipeline_runs_and_caches_through_a_server(
    project: Path, tmp_path: Path, cairn_home: Path
) -> None:
    from server_process import running_server

    db = f"sqlite:///{tmp_path / 'team.db'}"
    with running_server(db, str(tmp_path / "server-objects")) as base_url:
        env = {"CAIRN_URI": base_url}

        def run() -> dict[str, Any]:
            done = subprocess.run(
                [sys.executable, "-m", "cairn", "run", "churn", "--json"], cwd=project,
                capture_output=True, text=True, timeout=120, env={**os.environ, **env},
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
            result: dict[str, Any] = json.loads(done.stdout)
            return result

        first, again = run(), run()
        assert [s["state"] for s in first["steps"]] == ["ran"] * 3
        assert [s["state"] for s in again["steps"]] == ["cached"] * 3
        assert again["steps"][2]["output"] == first["steps"][2]["output"]
    # The server's stores hold the runs and the outputs; no embedded store was made here.
    assert not (cairn_home / "cairn.db").exists()
    assert any((tmp_path / "server-objects").rglob("*"))


CONFIGURED = """
import os
import config
from cairn import pipeline, step

@step
def train(x: float):
    return {"score": x * config.LR}

@step
def report(result):
    return {"score": result["score"], "user": os.environ.get("REPORT_USER", "")}

@pipeline
def tuned(x: float = 10.0):
    report(train(x))
"""


def test_a_constant_edited_in_a_local_module_reruns_its_step_and_unkeyed_reads_are_said(
    project: Path,
) -> None:
    (project / "config.py").write_text("LR = 0.1\n")
    (project / "tuned.py").write_text(CONFIGURED)
    first = cairn(project, "run", "tuned:tuned")
    again = cairn(project, "run", "tuned:tuned")
    assert "2 ran, 0 cached" in first.stdout
    assert "0 ran, 2 cached" in again.stdout
    unkeyed = (
        "warning: step report: the environment variables tuned.report reads are not part of "
        "the cache key (pass them as parameters)"
    )
    for done in (first, again):  # one line for the step, ran or cached
        assert done.stderr.count(unkeyed) == 1, done.stderr
        assert "step train:" not in done.stderr
    (project / "config.py").write_text("LR = 0.2\n")
    edited = json.loads(cairn(project, "run", "tuned:tuned", "--json").stdout)
    assert [s["state"] for s in edited["steps"]] == ["ran", "ran"]
    assert edited["warnings"] == [unkeyed.removeprefix("warning: ")]
    assert edited["steps"][1]["warning"] == unkeyed.removeprefix("warning: ")


STOPPING = """
import pathlib, sys, time
from cairn import pipeline, step

@step
def prepare(x: int):
    return x

@step
def train(x):
    pathlib.Path("started").write_text("yes")
    time.sleep(60)
    return x

@step
def quit(x):
    sys.exit(3)

@pipeline
def long(x: int = 1):
    train(prepare(x))

@pipeline
def exits(x: int = 1):
    quit(prepare(x))
"""


def _as_in_a_terminal() -> None:
    """Ctrl-C as a terminal's foreground command has it: a suite started in the background
    (``pytest &``) runs with SIGINT ignored, which its children inherit, and Python leaves
    an ignored SIGINT ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _signalled(project: Path, signum: int, *args: str) -> tuple[int, str, str]:
    """``cairn run ARGS``, sent ``signum`` once its step wrote ``started``: its exit
    code, output and errors."""
    with subprocess.Popen(
        [sys.executable, "-m", "cairn", "run", *args], cwd=project,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=_as_in_a_terminal,
    ) as running:  # fmt: skip
        for _ in range(1200):  # until the step is under way
            if (project / "started").exists() or running.poll() is not None:
                break
            time.sleep(0.05)
        running.send_signal(signum)
        try:
            out, err = running.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            running.kill()
            out, err = running.communicate()
            pytest.fail(f"cairn run did not stop within 60 s of the signal:\n{out}\n{err}")
    return running.returncode, out, err


def _statuses(project: Path, experiment: str) -> dict[str, str]:
    script = (
        "import json, sys, cairn\n"
        "print(json.dumps({r.name: r.status.value "
        "for r in cairn.search_runs(experiment=sys.argv[1])}))\n"
    )
    found: dict[str, str] = json.loads(_python(project, script, experiment))
    return found


@pytest.mark.parametrize(
    ("signum", "code", "line"),
    [
        (signal.SIGINT, 130, "interrupted: step train KILLED"),  # Ctrl-C
        (signal.SIGTERM, 143, "terminated (SIGTERM): step train KILLED"),
    ],
)
def test_a_run_stopped_by_a_signal_ends_its_runs_killed_and_says_so(
    project: Path, signum: int, code: int, line: str
) -> None:
    (project / "stopping.py").write_text(STOPPING)
    returncode, out, err = _signalled(project, signum, "stopping:long")
    assert returncode == code, err
    assert err.strip().splitlines()[-1] == line
    assert "Traceback" not in err
    assert re.search(r"train\s+killed", out)
    assert _statuses(project, "long") == {
        "long": "KILLED",
        "prepare": "FINISHED",
        "train": "KILLED",
    }


def test_a_step_that_calls_sys_exit_fails_and_the_run_says_why(project: Path) -> None:
    (project / "stopping.py").write_text(STOPPING)
    done = cairn(project, "run", "stopping:exits", ok=False)
    assert done.returncode == 1
    assert done.stderr.startswith("error: step quit called sys.exit(3)\nTraceback"), done.stderr
    assert re.search(r"quit\s+failed", done.stdout)
    assert _statuses(project, "exits") == {
        "exits": "FAILED",
        "prepare": "FINISHED",
        "quit": "FAILED",
    }


@pytest.mark.slow
def test_a_notebook_step_stops_on_ctrl_c_and_fails_when_its_kernel_dies(project: Path) -> None:
    """The notebook runner must neither swallow Ctrl-C nor wait forever on a dead kernel."""
    pytest.importorskip("nbclient")
    waits = "import pathlib, time\npathlib.Path('started').write_text('yes')\ntime.sleep(60)"
    _notebook(project / "waits.ipynb", [(waits, [])])
    _notebook(project / "dies.ipynb", [("import os\nos._exit(1)", [])])
    (project / "cairn.yaml").write_text(
        "pipelines:\n"
        "  waits:\n    steps:\n      book:\n        notebook: waits.ipynb\n"
        "  dies:\n    steps:\n      book:\n        notebook: dies.ipynb\n"
    )
    returncode, _, err = _signalled(project, signal.SIGINT, "waits")
    assert returncode == 130, err
    assert err.strip().splitlines()[-1] == "interrupted: step book KILLED"
    assert _statuses(project, "waits") == {"waits": "KILLED", "book": "KILLED"}
    died = cairn(project, "run", "dies", ok=False)
    assert "error: step book failed: CellFailed: the kernel died" in died.stderr

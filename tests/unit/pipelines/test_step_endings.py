"""However a step ends, its run ends with it: no run is left RUNNING, and the error says
why the pipeline stopped."""

from __future__ import annotations

import importlib
import signal
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

import cairn
from cairn.errors import StepFailed
from cairn.pipelines.executors import LocalExecutor, StepTask
from cairn.pipelines.interruption import Interrupted
from cairn.pipelines.runner import STEP_ERROR
from cairn.sdk import run_pipeline

STEPS = """
import os, signal, sys, threading, time
from cairn import pipeline, step

@step
def prepare(x: int):
    return x

@step(retries=2, backoff=0.0)
def quits(x):
    sys.exit(3)

@step
def interrupted(x):
    raise KeyboardInterrupt

@step
def terminated(x):
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(10)  # the signal arrives first

@step
def unstorable(x):
    return threading.Lock()

@step
def dies(x):
    os._exit(1)

@pipeline
def ending(kind: str = "quits", x: int = 1):
    {"quits": quits, "interrupted": interrupted, "terminated": terminated,
     "unstorable": unstorable, "dies": dies}[kind](prepare(x))

@pipeline
def side_by_side(x: int = 1):
    prepare(x)
    dies(x)
"""


@pytest.fixture
def steps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    (tmp_path / "endings.py").write_text(textwrap.dedent(STEPS))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield importlib.import_module("endings")
    del sys.modules["endings"]


def statuses(experiment: str) -> dict[str, str]:
    return {run.name: run.status.value for run in cairn.search_runs(experiment=experiment)}


def test_a_step_that_calls_sys_exit_fails_once_with_a_message(steps: ModuleType) -> None:
    with pytest.raises(StepFailed) as raised:
        run_pipeline(steps.ending.build(kind="quits"))
    assert raised.value.message.startswith("step quits called sys.exit(3)\nTraceback")
    assert 'endings.py", line 11, in quits' in raised.value.message
    assert statuses("ending") == {"ending": "FAILED", "prepare": "FINISHED", "quits": "FAILED"}
    [run] = cairn.search_runs(experiment="ending", filter="attributes.run_name = 'quits'")
    assert run.tags[STEP_ERROR] == "called sys.exit(3)"
    assert "(attempt" not in raised.value.message  # an exit is not tried again


def test_ctrl_c_in_a_step_kills_its_run_and_the_pipeline_run(steps: ModuleType) -> None:
    with pytest.raises(Interrupted) as raised:
        run_pipeline(steps.ending.build(kind="interrupted"))
    assert raised.value.message == "interrupted: step interrupted KILLED"
    assert raised.value.exit_code == 130
    assert statuses("ending") == {
        "ending": "KILLED", "prepare": "FINISHED", "interrupted": "KILLED",
    }  # fmt: skip


def test_sigterm_during_a_step_kills_its_run(steps: ModuleType) -> None:
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        pytest.skip("this process handles SIGTERM itself")
    with pytest.raises(Interrupted) as raised:
        run_pipeline(steps.ending.build(kind="terminated"))
    assert raised.value.message == "terminated (SIGTERM): step terminated KILLED"
    assert raised.value.exit_code == 143
    assert statuses("ending")["terminated"] == "KILLED"
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # as it was


def test_an_output_that_cannot_be_stored_fails_its_step(steps: ModuleType) -> None:
    with pytest.raises(StepFailed, match="step unstorable failed: its output \\(a lock\\) cannot"):
        run_pipeline(steps.ending.build(kind="unstorable"))
    assert statuses("ending")["unstorable"] == "FAILED"


def test_when_cairn_fails_mid_run_the_runs_it_had_open_are_failed(
    steps: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(self: LocalExecutor, tasks: list[StepTask]) -> None:
        raise OSError("No space left on device")

    monkeypatch.setattr(LocalExecutor, "run_all", full)
    with pytest.raises(OSError, match="No space left"):
        run_pipeline(steps.ending.build(kind="quits"))
    assert statuses("ending") == {"ending": "FAILED", "prepare": "FAILED"}
    [run] = cairn.search_runs(experiment="ending", filter="attributes.run_name = 'prepare'")
    assert run.tags[STEP_ERROR] == "failed: the run stopped: OSError: No space left on device"


def test_a_worker_process_that_dies_fails_its_step_not_the_driver(steps: ModuleType) -> None:
    """``os._exit`` in a step run by a worker process: the driver lives and says so. (A
    broken pool breaks every step it was running, so which one is reported first is a
    race: ``prepare`` may be named too.)"""
    with pytest.raises(StepFailed, match=r"step \w+ failed: its worker processes broke"):
        run_pipeline(steps.side_by_side.build(), workers=2)
    found = statuses("side_by_side")
    assert found["dies"] == "FAILED"
    assert "RUNNING" not in found.values()


def test_a_sweep_stopped_by_ctrl_c_ends_its_sweep_run_killed(steps: ModuleType) -> None:
    pytest.importorskip("optuna")
    with pytest.raises(Interrupted):
        cairn.sdk.sweep(steps.ending, ["x=int(1,3)"], 2, "score", params={"kind": "interrupted"})
    found = statuses("ending")
    assert found["sweep-ending"] == "KILLED"  # like the trial and its step
    assert found["interrupted"] == "KILLED"

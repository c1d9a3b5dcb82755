"""Hyperparameter searches over a pipeline's parameters, with Optuna.

    cairn sweep churn --param "lr=loguniform(1e-4,1e-1)" --param "depth=int(3,10)" \\
        --trials 20 --objective val_auc --direction max

A sweep is a run; each trial is a pipeline run nested in it, whose parameters Optuna
suggests from the search space, and whose objective is the metric of that name the
pipeline logged (a step returning ``{"val_auc": …}``). The best trial is tagged
``cairn.sweep.best``; the sweep run gets its parameters (``best.<name>``) and objective.
Trials with parameters already tried are taken from the step cache like any other run.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cairn.core.limits import finite
from cairn.core.run import RunStatus
from cairn.errors import InvalidInput, MissingExtra, StepFailed
from cairn.pipelines.definition import Graph, Pipeline
from cairn.pipelines.interruption import terminating_interrupts
from cairn.pipelines.runner import PipelineResult

_SPEC = re.compile(r"^\s*([A-Za-z_]\w*)\s*=\s*([a-z]+)\((.*)\)\s*$")
KINDS = ("uniform", "loguniform", "int", "logint", "choice")


@dataclass(frozen=True, slots=True)
class Dimension:
    name: str
    kind: str  # one of KINDS
    values: tuple[Any, ...]  # (low, high), or the choices

    def suggest(self, trial: Any) -> Any:
        if self.kind == "choice":
            return trial.suggest_categorical(self.name, list(self.values))
        low, high = self.values
        if self.kind in ("int", "logint"):
            return trial.suggest_int(self.name, low, high, log=self.kind == "logint")
        return trial.suggest_float(self.name, low, high, log=self.kind == "loguniform")


def parse_dimension(spec: str) -> Dimension:
    """``lr=loguniform(1e-4,1e-1)``, ``depth=int(3,10)``, ``n=logint(8,512)``,
    ``dropout=uniform(0,0.5)``, ``kind=choice(gbm,forest)``.

    Raises:
        InvalidInput: naming the spec and what was expected.
    """
    found = _SPEC.match(spec)
    expected = (
        f"--param {spec!r}: expected NAME=KIND(…) with KIND one of {', '.join(KINDS)}, "
        "such as lr=loguniform(1e-4,1e-1) or depth=int(3,10)"
    )
    if found is None or found.group(2) not in KINDS:
        raise InvalidInput(expected)
    name, kind, inside = found.groups()
    parts = [p.strip() for p in inside.split(",") if p.strip()]
    if kind == "choice":
        if not parts:
            raise InvalidInput(f"--param {spec!r}: choice(…) needs at least one value")
        return Dimension(name, kind, tuple(_value(p) for p in parts))
    try:
        low, high = (int(p) if kind in ("int", "logint") else float(p) for p in parts)
    except ValueError:
        raise InvalidInput(f"{expected}; {kind} takes two numbers, low and high") from None
    if not (finite(low) and finite(high)) or low >= high:
        raise InvalidInput(f"--param {spec!r}: expected low < high, got {low} and {high}")
    if kind.startswith("log") and low <= 0:
        raise InvalidInput(f"--param {spec!r}: a log scale needs low > 0, got {low}")
    return Dimension(name, kind, (low, high))


@dataclass
class Trial:
    number: int
    params: dict[str, Any]
    run_id: str = ""
    value: float | None = None
    state: str = "finished"  # finished, failed (a step failed), missing (no objective)
    error: str = ""


@dataclass
class SweepResult:
    run_id: str
    objective: str
    direction: str
    trials: list[Trial] = field(default_factory=list)

    @property
    def best(self) -> Trial | None:
        scored = [t for t in self.trials if t.value is not None]
        if not scored:
            return None
        pick = max if self.direction == "max" else min
        return pick(scored, key=lambda t: t.value if t.value is not None else math.nan)


# What a sweep needs from its caller: run a graph nested in a run (graph, parent run id,
# tags); open and close the sweep run itself, and tag and log on runs.
RunGraph = Callable[[Graph, str, dict[str, str]], PipelineResult]


@dataclass(frozen=True)
class SweepRuns:
    start: Callable[[str], str]  # name → the sweep run's id
    tag: Callable[[str, dict[str, str]], None]
    log: Callable[[str, dict[str, str], dict[str, float]], None]  # params, metrics
    end: Callable[[str, RunStatus], object]  # run id, how it ended


def run_sweep(
    pipeline: Pipeline,
    fixed: dict[str, Any],
    space: list[Dimension],
    trials: int,
    objective: str,
    direction: str,
    run_graph: RunGraph,
    runs: SweepRuns,
    seed: int | None = None,
    on_trial: Callable[[Trial], None] | None = None,
) -> SweepResult:
    """Run ``trials`` trials of the pipeline, each with parameters from ``space`` (and
    ``fixed``), and tag the best.

    Raises:
        InvalidInput: a bad direction or trial count; a dimension that is not a
            parameter of the pipeline, or one also fixed.
        MissingExtra: Optuna is not installed.
        KeyboardInterrupt: Ctrl-C or a signal stopped it (``Interrupted`` from a trial);
            the sweep run ends ``KILLED``.
    """
    if direction not in ("max", "min"):
        raise InvalidInput(f"--direction {direction!r}: expected max or min")
    if trials < 1:
        raise InvalidInput(f"--trials {trials}: expected 1 or more")
    names = [d.name for d in space]
    for name in names:
        if name not in pipeline.signature.parameters:
            known = ", ".join(pipeline.signature.parameters) or "none"
            raise InvalidInput(
                f"--param {name}: pipeline {pipeline.name} has no such parameter (its "
                f"parameters: {known})"
            )
        if name in fixed:
            raise InvalidInput(f"parameter {name!r} is both fixed (-p) and searched (--param)")
    optuna = _optuna()
    sampler = optuna.samplers.TPESampler(seed=seed)
    study = optuna.create_study(
        direction="maximize" if direction == "max" else "minimize", sampler=sampler
    )
    sweep_id = runs.start(f"sweep-{pipeline.name}")
    runs.log(sweep_id, {"objective": objective, "direction": direction,
                        "trials": str(trials)}, {})  # fmt: skip
    result = SweepResult(sweep_id, objective, direction)
    ended = RunStatus.FAILED  # unless it goes through, or is stopped from outside
    try:
        # SIGTERM while Optuna picks the next trial, too, ends the sweep run KILLED.
        with terminating_interrupts():
            for _ in range(trials):
                asked = study.ask()
                params = {d.name: d.suggest(asked) for d in space}
                trial = Trial(asked.number, params)
                _run_trial(pipeline, {**fixed, **params}, trial, objective, run_graph, sweep_id)
                if trial.value is None:
                    study.tell(asked, state=optuna.trial.TrialState.FAIL)
                else:
                    study.tell(asked, trial.value)
                result.trials.append(trial)
                if on_trial is not None:
                    on_trial(trial)
        best = result.best
        if best is not None:
            runs.tag(best.run_id, {"cairn.sweep.best": "true"})
            best_params = {f"best.{k}": str(v) for k, v in best.params.items()}
            runs.log(sweep_id, {**best_params, "best.run_id": best.run_id},
                     {f"best_{objective}": best.value or 0.0})  # fmt: skip
        ended = RunStatus.FINISHED
    except KeyboardInterrupt:
        ended = RunStatus.KILLED
        raise
    finally:
        runs.end(sweep_id, ended)
    return result


def _run_trial(
    pipeline: Pipeline,
    params: dict[str, Any],
    trial: Trial,
    objective: str,
    run_graph: RunGraph,
    sweep_id: str,
) -> None:
    graph = pipeline.build(**params)
    tags = {"cairn.sweep.trial": str(trial.number)}
    try:
        done = run_graph(graph, sweep_id, tags)
    except StepFailed as exc:
        trial.state, trial.error = "failed", exc.message.splitlines()[0]
        return
    trial.run_id = done.run_id
    if objective not in done.metrics:
        trial.state = "missing"
        trial.error = (
            f"the pipeline logged no metric {objective!r} (it logged: "
            f"{', '.join(sorted(done.metrics)) or 'none'})"
        )
        return
    trial.value = done.metrics[objective]


def _value(text: str) -> Any:
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            continue
    return {"true": True, "false": False}.get(text, text)


def _optuna() -> Any:
    try:
        import optuna
    except ImportError as exc:
        raise MissingExtra("cairn sweep needs Optuna: pip install 'cairn-mlops[sweep]'") from exc
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna

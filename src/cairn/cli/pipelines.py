"""``cairn run`` and ``cairn pipelines``: run a pipeline, see what it is made of."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.text import Text

from cairn.cli.options import Json
from cairn.cli.output import console, errors, print_json
from cairn.cli.report import Line, Report, Table, View, render
from cairn.config import load_settings
from cairn.errors import StepFailed
from cairn.pipelines.definition import Graph
from cairn.pipelines.interruption import Interrupted
from cairn.pipelines.loading import declared, load_pipeline, parse_params
from cairn.pipelines.reproduce import Reproduction
from cairn.pipelines.runner import PipelineResult, StepResult
from cairn.pipelines.sweep import SweepResult, Trial
from cairn.session import workspace

app = typer.Typer(help="Pipelines: their steps and how they connect.", no_args_is_help=True)

Target = Annotated[
    str, typer.Argument(help="A name from cairn.yaml, module:name, or path/to/file.py:name.")
]
Params = Annotated[list[str] | None, typer.Option("--param", "-p", help="NAME=VALUE (repeatable).")]
Experiment = Annotated[
    str | None, typer.Option(help="The experiment (default: the pipeline's name).")
]
Executor = Annotated[str, typer.Option(help="Where steps run: local or ray.")]
RayAddress = Annotated[
    str | None, typer.Option(help="ray: the cluster (HOST:PORT); default: a local one.")
]

_STATE_STYLE = {"ran": "green", "cached": "cyan", "failed": "red", "killed": "red",
                "skipped": "dim"}  # fmt: skip


def run(
    target: Target,
    param: Params = None,
    force: Annotated[bool, typer.Option("--force", help="Run every step, cached or not.")] = False,
    only: Annotated[
        list[str] | None,
        typer.Option("--only", help="Run only this step (repeatable); the rest must be cached."),
    ] = None,
    experiment: Experiment = None,
    executor: Executor = "local",
    workers: Annotated[
        int, typer.Option(help="local: how many independent steps may run at once, in processes.")
    ] = 1,
    ray_address: RayAddress = None,
    json: Json = False,
) -> None:
    """Run a pipeline: each step runs, or is taken from the cache when nothing it depends
    on changed."""
    from cairn.sdk import run_pipeline  # the SDK opens the stores: only when running

    graph = _graph(target, param)
    shown: set[str] = set()  # warnings printed under their step

    def show(done: StepResult) -> None:
        if json:
            return
        style = _STATE_STYLE.get(done.state, "")
        model = f"  → {escape(done.model)}" if done.model else ""
        console.print(
            f"  {escape(done.node):24} [{style}]{done.state:8}[/] {done.seconds:8.2f} s{model}"
        )
        if done.warning:  # what its cache key does not cover: once per step
            _warn(done.warning)
            shown.add(done.warning)

    if not json:
        console.print(Text.assemble((graph.pipeline, "bold"), " ", _shown_params(graph.params)))
    try:
        with _stops_reported(graph.pipeline, json):
            result = run_pipeline(
                graph,
                experiment=experiment,
                force=force,
                only=frozenset(only) if only else None,
                on_step=show,
                executor=executor,
                workers=workers,
                ray_address=ray_address,
            )
    except StepFailed as exc:
        _stopped(graph.pipeline, json, f"error: {exc.message}")
        raise typer.Exit(1) from None
    for warning in result.warnings:
        if warning not in shown and not json:
            _warn(warning)
    render(run_report(result), json)


def run_report(result: PipelineResult) -> Report[dict[str, Any]]:
    """A pipeline run: per step its state, time, run and output."""
    return Report(_result_dict(result), _run_views)


def _run_views(result: Mapping[str, Any]) -> Iterator[View]:
    run_id = result["run_id"][:12]
    ran = sum(s["state"] == "ran" for s in result["steps"])
    cached = sum(s["state"] == "cached" for s in result["steps"])
    yield Line(
        f"run {run_id}: {ran} ran, {cached} cached in {result['seconds']:.2f} s "
        f"(cairn runs show {run_id})"
    )


def sweep(
    target: Target,
    search: Annotated[
        list[str],
        typer.Option(
            "--param",
            help="NAME=KIND(…): uniform(a,b), loguniform(a,b), int(a,b), logint(a,b), "
            "choice(x,y,…) (repeatable).",
        ),
    ],
    objective: Annotated[str, typer.Option(help="The metric to optimise, as a step logs it.")],
    trials: Annotated[int, typer.Option(help="How many trials.")] = 20,
    direction: Annotated[str, typer.Option(help="max or min.")] = "max",
    fixed: Annotated[
        list[str] | None, typer.Option("--set", "-p", help="A fixed NAME=VALUE (repeatable).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed the sampler (repeatable sweeps).")] = None,
    experiment: Experiment = None,
    executor: Executor = "local",
    ray_address: RayAddress = None,
    json: Json = False,
) -> None:
    """Search a pipeline's parameters with Optuna; each trial is a pipeline run, the best
    is tagged cairn.sweep.best."""
    from cairn.sdk import sweep as run_sweep  # the SDK opens the stores: only when running

    root = workspace(load_settings())
    pipeline = load_pipeline(target, root)

    def show(trial: Trial) -> None:
        if json:
            return
        shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                          for k, v in trial.params.items())  # fmt: skip
        value = f"{objective}={trial.value:.4f}" if trial.value is not None else trial.error
        console.print(f"  trial {trial.number:3}  {escape(shown):40} {escape(value)}")

    with _stops_reported(pipeline.name, json):
        result = run_sweep(
            pipeline, search, trials, objective, direction, params=parse_params(fixed or []),
            experiment=experiment, seed=seed, on_trial=show, executor=executor,
            ray_address=ray_address,
        )  # fmt: skip
    if result.best is None and not json:
        errors.print(f"[red]no trial logged {escape(objective)}[/]")
        raise typer.Exit(1)
    render(sweep_report(result, objective, direction), json)


def sweep_report(result: SweepResult, objective: str, direction: str) -> Report[dict[str, Any]]:
    """A sweep: its trials, each with its params, objective and run, and the best."""
    best = result.best
    data = {
        "run_id": result.run_id,
        "objective": objective,
        "direction": direction,
        "best": None if best is None else {"trial": best.number, "run_id": best.run_id,
                                           "value": best.value, "params": best.params},
        "trials": [
            {"trial": t.number, "params": t.params, "value": t.value, "state": t.state,
             "run_id": t.run_id, "error": t.error}
            for t in result.trials
        ],
    }  # fmt: skip
    return Report(data, _sweep_views)


def _sweep_views(sweep: Mapping[str, Any]) -> Iterator[View]:
    best = sweep["best"]
    if best is not None:
        yield Line(
            f"best: trial {best['trial']} ({sweep['objective']}={best['value']:.4f}) run "
            f"{best['run_id'][:12]}, tagged cairn.sweep.best; sweep run {sweep['run_id'][:12]}"
        )


def reproduce(
    run_ref: Annotated[
        str,
        typer.Argument(
            metavar="RUN|MODEL",
            help="A pipeline run (id or prefix), or a model version it made (churn@champion).",
        ),
    ],
    tolerance: Annotated[
        float, typer.Option(help="How far numbers in a returned dict may move (relative).")
    ] = 0.0,
    json: Json = False,
) -> None:
    """Run a recorded pipeline run again (its commit, parameters and data versions, cache
    off) and say, per step, whether its output is identical, within tolerance, or
    different; exits 1 if anything differs."""
    from cairn.sdk import reproduce as run_again  # the SDK opens the stores

    def show(done: StepResult) -> None:
        if not json:
            console.print(f"  {escape(done.node):24} {done.state:8} {done.seconds:8.2f} s")

    with _stops_reported(run_ref, json):
        found = run_again(run_ref, tolerance, on_step=show)
    render(reproduce_report(found), json)
    if not found.reproduced:
        raise typer.Exit(1)


def reproduce_report(found: Reproduction) -> Report[dict[str, Any]]:
    """A run reproduced: per step whether its output is identical, within tolerance or
    different, and what changed in the environment."""
    data = {
        "original": found.original, "run_id": found.run_id, "commit": found.commit,
        "where": found.where, "reproduced": found.reproduced,
        "steps": [dataclasses.asdict(s) for s in found.steps],
        "environment": {k: list(v) for k, v in found.environment.items()},
    }  # fmt: skip
    return Report(data, _reproduce_views)


def _reproduce_views(found: Mapping[str, Any]) -> Iterator[View]:
    yield Line(
        f"reproduced {found['original'][:12]} as {found['run_id'][:12]}, in {found['where']}"
    )
    rows = [(s["step"], s["verdict"], s["detail"] or None) for s in found["steps"]]
    yield Table(None, ("step", "output", "detail"), rows)
    for name, (before, now) in found["environment"].items():
        yield Line(f"  environment: {name} {before or '(absent)'} → {now or '(absent)'}")


@app.command("list")
def list_pipelines(json: Json = False) -> None:
    """The pipelines cairn.yaml names."""
    render(list_report(workspace(load_settings())), json)


def list_report(folder: Path) -> Report[list[dict[str, Any]]]:
    """The pipelines the cairn.yaml of a working copy names, and where each is defined."""
    found = {
        name: target if isinstance(target, str) else f"cairn.yaml ({len(target['steps'])} steps)"
        for name, target in declared(folder).items()
    }
    return Report([{"name": k, "target": v} for k, v in sorted(found.items())], _list_views)


def _list_views(pipelines: list[dict[str, Any]]) -> Iterator[View]:
    yield Table(None, ("pipeline", "defined in"), [(p["name"], p["target"]) for p in pipelines])


@app.command("show")
def show(target: Target, param: Params = None, json: Json = False) -> None:
    """A pipeline's parameters and steps: what each takes and from where."""
    render(Report(_graph_dict(_graph(target, param)), _show_views), json)


def _show_views(graph: Mapping[str, Any]) -> Iterator[View]:
    yield Line(Text.assemble((graph["pipeline"], "bold"), " ", _shown_params(graph["params"])))
    rows = [
        (
            step["name"],
            ", ".join(f"{arg} ← {up}" for arg, up in step["inputs"].items()) or None,
            _shown_params(step["params"]) or None,
        )
        for step in graph["steps"]
    ]
    yield Table(None, ("step", "inputs", "parameters"), rows)


@app.command("dag")
def dag(
    target: Target,
    param: Params = None,
    mermaid: Annotated[bool, typer.Option("--mermaid", help="As a Mermaid flowchart.")] = False,
    dot: Annotated[bool, typer.Option("--dot", help="As Graphviz DOT.")] = False,
) -> None:
    """The steps and what flows between them: as text, Mermaid or DOT."""
    graph = _graph(target, param)
    edges = [
        (up, node.name, arg) for node in graph.nodes.values() for arg, up in node.inputs.items()
    ]
    if mermaid:
        lines = ["flowchart TD"]
        lines += [f'    {_id(n)}["{n}"]' for n in graph.nodes]
        lines += [f"    {_id(a)} -->|{arg}| {_id(b)}" for a, b, arg in edges]
    elif dot:
        lines = [f'digraph "{graph.pipeline}" {{', "    rankdir=TB;"]
        lines += [f'    "{n}";' for n in graph.nodes]
        lines += [f'    "{a}" -> "{b}" [label="{arg}"];' for a, b, arg in edges]
        lines.append("}")
    else:
        lines = []
        for node in graph.nodes.values():
            after = graph.downstream(node.name)
            lines.append(f"{node.name}" + (f" → {', '.join(after)}" if after else ""))
    console.print("\n".join(lines), markup=False, highlight=False)


@contextmanager
def _stops_reported(pipeline: str, json: bool) -> Iterator[None]:
    """A run stopped by Ctrl-C or a signal: one line saying so, and the exit code a
    shell expects of a process the signal ended (130 for Ctrl-C)."""
    try:
        yield
    except Interrupted as exc:
        _stopped(pipeline, json, exc.message)
        raise typer.Exit(exc.exit_code) from None


def _stopped(pipeline: str, json: bool, line: str) -> None:
    if json:
        print_json({"pipeline": pipeline, "error": line.removeprefix("error: ")})
    # Plain text: a traceback must not be re-wrapped to the terminal's width.
    print(line, file=sys.stderr)


def _warn(warning: str) -> None:
    errors.print(f"[yellow]warning:[/] {escape(warning)}", soft_wrap=True)  # one line


def _graph(target: str, param: list[str] | None) -> Graph:
    root = workspace(load_settings())
    return load_pipeline(target, root).build(**parse_params(param or []))


def _shown_params(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in params.items())


def _id(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name)


def _graph_dict(graph: Graph) -> dict[str, Any]:
    return {
        "pipeline": graph.pipeline,
        "params": graph.params,
        "steps": [
            {"name": n.name, "step": n.step.name, "inputs": n.inputs, "params": n.params}
            for n in graph.nodes.values()
        ],
    }


def _result_dict(result: PipelineResult) -> dict[str, Any]:
    return {
        "pipeline": result.pipeline,
        "run_id": result.run_id,
        "seconds": result.seconds,
        "warnings": result.warnings,
        "steps": [
            {
                "name": s.node, "state": s.state, "seconds": s.seconds, "run_id": s.run_id,
                "output": s.output.digest if s.output else None,
                "format": s.output.format if s.output else None,
                "attempts": s.attempts, "model": s.model or None,
                "warning": s.warning or None,
            }
            for s in result.steps
        ],
    }  # fmt: skip

"""``cairn runs``: list, show, compare, delete and restore runs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import typer
from rich.text import Text

from cairn.cli.context import session
from cairn.cli.output import (
    console,
    format_duration,
    format_number,
    format_size,
    format_time,
    print_json,
    table,
)
from cairn.core.codec import entry_to_dict, run_to_dict
from cairn.core.compare import compare_runs
from cairn.core.filter import Entity, parse_filter, parse_order_by
from cairn.core.run import Run, ViewType

app = typer.Typer(help="Runs: list, inspect, compare, delete and restore.", no_args_is_help=True)

Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
RunRef = Annotated[str, typer.Argument(help="Run id, or a unique prefix of 8+ characters.")]
_DEFAULT_METRIC_COLUMNS = 3


@app.command("list")
def list_runs(
    experiment: Annotated[
        list[str] | None, typer.Option("--experiment", "-e", help="Experiment name (repeatable).")
    ] = None,
    filter: Annotated[  # the word users know from MLflow
        str, typer.Option("--filter", "-f", help="e.g. \"metrics.auc > 0.9 and params.lr = '0.1'\"")
    ] = "",
    order_by: Annotated[
        list[str] | None,
        typer.Option("--order-by", "-o", help="e.g. 'metrics.auc DESC' (repeatable)."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="At most this many runs.")] = 50,
    view: Annotated[ViewType, typer.Option("--view", help="active, deleted or all.")] = (
        ViewType.ACTIVE
    ),
    json: Json = False,
) -> None:
    """List runs, filtered and ordered by the store."""
    tracking = session().tracking
    page = tracking.search_runs(experiment, filter, order_by or (), limit, None, view)
    if json:
        print_json(
            {"runs": [run_to_dict(r) for r in page.runs], "next_page_token": page.next_page_token}
        )
        return
    params, metrics = _columns(page.runs, filter, order_by or ())
    print_runs(page.runs, params, metrics, more=page.next_page_token is not None)


def print_runs(
    runs: Sequence[Run], params: Sequence[str], metrics: Sequence[str], more: bool = False
) -> None:
    """Runs as a table: their attributes, and these params and latest metrics; ``more``:
    there are more than these."""
    names = {e.id: e.name for e in session().tracking.list_experiments()}
    header: tuple[str, ...] = ("id", "name", "experiment", "status", "started", "duration")
    header += tuple(f"params.{k}" for k in params) + tuple(f"metrics.{k}" for k in metrics)
    rows = [
        (
            run.id[:12],
            run.name,
            names.get(run.experiment_id, run.experiment_id[:8]),
            _status(run),
            format_time(run.start_time),
            format_duration(run.start_time, run.end_time),
            *(run.params.get(k) for k in params),
            *(run.metrics[k].value if k in run.metrics else None for k in metrics),
        )
        for run in runs
    ]
    table(f"Runs ({len(rows)}{', more' if more else ''})", header, rows)


def _columns(
    runs: Sequence[Run], filter_text: str, order: Sequence[str]
) -> tuple[list[str], list[str]]:
    """The params and metrics worth a column: those the search named, else a few metrics."""
    named = [(c.entity, c.key) for c in parse_filter(filter_text)]
    named += [(o.entity, o.key) for o in parse_order_by(list(order))] if order else []
    params = list(dict.fromkeys(k for e, k in named if e is Entity.PARAM))
    metrics = list(dict.fromkeys(k for e, k in named if e is Entity.METRIC))
    if not metrics:
        seen = dict.fromkeys(k for run in runs for k in sorted(run.metrics))
        metrics = list(seen)[:_DEFAULT_METRIC_COLUMNS]
    return params, metrics


def _status(run: Run) -> Text:
    colour = {"FINISHED": "green", "FAILED": "red", "RUNNING": "cyan", "KILLED": "yellow"}
    label = run.status.value + (" (deleted)" if run.lifecycle.value == "deleted" else "")
    return Text(label, style=colour.get(run.status.value, ""))


@app.command("show")
def show(run_ref: RunRef, json: Json = False) -> None:
    """Show one run: its attributes, params, latest metrics, tags, children and artifacts."""
    tracking = session().tracking
    run = tracking.get_run(run_ref)
    children = tracking.metadata.child_runs(run.id, ViewType.ALL)
    artifacts = tracking.metadata.list_artifacts(run.id)
    if json:
        data = run_to_dict(run)
        data["children"] = [c.id for c in children]
        data["artifacts"] = [entry_to_dict(a) for a in artifacts]
        print_json(data)
        return
    experiment = tracking.metadata.get_experiment(run.experiment_id).name
    console.print(f"[bold]Run {run.id}[/bold]  {run.name}")
    details = [
        ("experiment", experiment),
        ("status", _status(run)),
        ("started", format_time(run.start_time)),
        ("ended", format_time(run.end_time)),
        ("duration", format_duration(run.start_time, run.end_time)),
        ("user", run.user),
        ("parent", run.parent_id),
        ("git commit", run.git_commit),
        ("source", run.source),
    ]
    table(None, ("attribute", "value"), details)
    if run.params:
        table("Params", ("key", "value"), sorted(run.params.items()))
    if run.metrics:
        rows = [
            (k, m.value, m.step, format_time(m.timestamp)) for k, m in sorted(run.metrics.items())
        ]
        table("Metrics (latest)", ("key", "value", "step", "logged"), rows)
    if run.tags:
        table("Tags", ("key", "value"), sorted(run.tags.items()))
    if children:
        # A pipeline run's children are its steps: say whether each ran or came from cache.
        child_rows = [
            (c.id[:12], c.name, _status(c), c.tags.get("cairn.step.state"),
             format_duration(c.start_time, c.end_time))
            for c in sorted(children, key=lambda c: c.start_time)
        ]  # fmt: skip
        table("Child runs", ("id", "name", "status", "step", "duration"), child_rows)
    if artifacts:
        total = sum(a.size for a in artifacts)
        console.print(
            f"{len(artifacts)} artifact files, {format_size(total)} "
            f"(see `cairn artifacts list {run.id[:12]}`)"
        )


@app.command("compare")
def compare(
    run_refs: Annotated[list[str], typer.Argument(help="Two or more run ids or prefixes.")],
    only_differences: Annotated[
        bool, typer.Option("--diff", help="Show only the rows where the runs differ.")
    ] = False,
    json: Json = False,
) -> None:
    """Params and latest metrics of runs side by side; differences are highlighted."""
    tracking = session().tracking
    runs = [tracking.get_run(ref) for ref in run_refs]
    rows = [r for r in compare_runs(runs) if r.differs or not only_differences]
    if json:
        print_json(
            {
                "runs": [{"id": r.id, "name": r.name} for r in runs],
                "rows": [
                    {
                        "kind": r.kind,
                        "key": r.key,
                        "values": [_json_value(v) for v in r.values],
                        "differs": r.differs,
                    }
                    for r in rows
                ],
            }
        )
        return
    header = ("", "key", *(f"{r.name}\n{r.id[:12]}" for r in runs))
    shown = [
        (
            Text("≠", style="bold yellow") if row.differs else "",
            Text(f"{row.kind}s.{row.key}", style="bold yellow" if row.differs else ""),
            *(_compared(v, row.differs) for v in row.values),
        )
        for row in rows
    ]
    table("Comparison (≠ marks a difference)", header, shown)


def _compared(value: str | float | None, differs: bool) -> Text:
    text = "—" if value is None else format_number(value) if isinstance(value, float) else value
    return Text(text, style="yellow" if differs else "")


def _json_value(value: str | float | None) -> str | float | None:
    from cairn.core.codec import encode_float

    return encode_float(value) if isinstance(value, float) else value


@app.command("delete")
def delete(run_ref: RunRef) -> None:
    """Delete a run (it can be restored)."""
    run = session().tracking.delete_run(run_ref)
    console.print(
        f"deleted run {run.id} ({run.name}); `cairn runs restore {run.id[:12]}` undoes it"
    )


@app.command("restore")
def restore(run_ref: RunRef) -> None:
    """Restore a deleted run."""
    run = session().tracking.restore_run(run_ref)
    console.print(f"restored run {run.id} ({run.name})")

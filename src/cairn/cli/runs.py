"""``cairn runs``: list, show, compare, delete and restore runs."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.text import Text

from cairn.cli.context import session
from cairn.cli.options import Json, RunRef
from cairn.cli.output import (
    console,
    format_duration,
    format_elapsed,
    format_number,
    format_size,
    format_time,
)
from cairn.cli.report import Fields, Line, Report, Table, View, render
from cairn.core.codec import encode_float, entry_to_dict, run_to_dict
from cairn.core.compare import compare_runs
from cairn.core.filter import Entity, parse_filter, parse_order_by
from cairn.core.run import Run, ViewType

if TYPE_CHECKING:
    from cairn.tracking.service import TrackingService

app = typer.Typer(help="Runs: list, inspect, compare, delete and restore.", no_args_is_help=True)

_DEFAULT_METRIC_COLUMNS = 3
_STATUS_STYLE = {"FINISHED": "green", "FAILED": "red", "RUNNING": "cyan", "KILLED": "yellow"}
_STEP_STATE = "cairn.step.state"  # the tag saying whether a pipeline's step ran or was cached


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
    found = list_report(session().tracking, experiment, filter, order_by or (), limit, view)
    render(found, json)


def list_report(
    tracking: TrackingService,
    experiment: Sequence[str] | None,
    filter_text: str = "",
    order_by: Sequence[str] = (),
    limit: int = 50,
    view: ViewType = ViewType.ACTIVE,
) -> Report[dict[str, Any]]:
    """The runs a search finds, each with its experiment's name, and the params and
    metrics worth a column."""
    page = tracking.search_runs(experiment, filter_text, order_by, limit, None, view)
    params, metrics = _columns(page.runs, filter_text, order_by)
    return runs_report(tracking, page.runs, params, metrics, page.next_page_token)


def runs_report(
    tracking: TrackingService,
    runs: Sequence[Run],
    params: Sequence[str],
    metrics: Sequence[str],
    next_page_token: str | None = None,
) -> Report[dict[str, Any]]:
    """Runs, each with its experiment's name, with these params and metrics as columns."""
    names = {e.id: e.name for e in tracking.list_experiments()}
    data = {
        "runs": [{**run_to_dict(r), "experiment": names.get(r.experiment_id)} for r in runs],
        "next_page_token": next_page_token,
        "columns": {"params": list(params), "metrics": list(metrics)},
    }
    return Report(data, _list_views)


def _list_views(data: Mapping[str, Any]) -> Iterator[View]:
    params, metrics = data["columns"]["params"], data["columns"]["metrics"]
    header: tuple[str, ...] = ("id", "name", "experiment", "status", "started", "duration")
    header += tuple(f"params.{k}" for k in params) + tuple(f"metrics.{k}" for k in metrics)
    rows = [
        (
            run["id"][:12],
            run["name"],
            run["experiment"] or run["experiment_id"][:8],
            run_status(run),
            format_time(run["start_time"]),
            format_duration(run["start_time"], run["end_time"]),
            *(run["params"].get(k) for k in params),
            *(_metric_value(run, k) for k in metrics),
        )
        for run in data["runs"]
    ]
    yield Table(f"Runs ({len(rows)}{', more' if data['next_page_token'] else ''})", header, rows)


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


def _metric_value(run: Mapping[str, Any], key: str) -> str | None:
    metric = run["metrics"].get(key)
    return None if metric is None else format_number(metric["value"])


def run_status(run: Mapping[str, Any]) -> Text:
    """A run's status in its colour, and whether it is deleted."""
    label = run["status"] + (" (deleted)" if run["lifecycle"] == "deleted" else "")
    return Text(label, style=_STATUS_STYLE.get(run["status"], ""))


@app.command("show")
def show(run_ref: RunRef, json: Json = False) -> None:
    """Show one run: its attributes, params, latest metrics, tags, children and artifacts."""
    render(show_report(session().tracking, run_ref), json)


def show_report(tracking: TrackingService, run_ref: str) -> Report[dict[str, Any]]:
    """A run with its experiment's name, its children (a pipeline run's steps: whether
    each ran or came from the cache) and its artifact files."""
    run = tracking.get_run(run_ref)
    children = child_runs(tracking, run.id)
    data = {
        **run_to_dict(run),
        "experiment": tracking.metadata.get_experiment(run.experiment_id).name,
        "children": [c.id for c in children],
        "child_runs": [_child_dict(c) for c in children],
        "artifacts": [entry_to_dict(a) for a in tracking.metadata.list_artifacts(run.id)],
    }
    return Report(data, _show_views)


def child_runs(tracking: TrackingService, run_id: str) -> list[Run]:
    """The runs a run started (a pipeline run's steps), deleted ones too, oldest first."""
    return sorted(tracking.child_runs(run_id, ViewType.ALL), key=lambda c: c.start_time)


def _child_dict(child: Run) -> dict[str, Any]:
    return {
        "id": child.id,
        "name": child.name,
        "status": child.status.value,
        "lifecycle": child.lifecycle.value,
        "step_state": child.tags.get(_STEP_STATE),
        "start_time": child.start_time,
        "end_time": child.end_time,
        "duration_ms": None if child.end_time is None else child.end_time - child.start_time,
    }


def _show_views(run: Mapping[str, Any]) -> Iterator[View]:
    yield Line(Text.assemble((f"Run {run['id']}", "bold"), f"  {run['name']}"))
    yield Fields(
        None,
        [
            ("experiment", run["experiment"]),
            ("status", run_status(run)),
            ("started", format_time(run["start_time"])),
            ("ended", format_time(run["end_time"])),
            ("duration", format_duration(run["start_time"], run["end_time"])),
            ("user", run["user"]),
            ("parent", run["parent_id"]),
            ("git commit", run["git_commit"]),
            ("source", run["source"]),
        ],
    )
    if run["params"]:
        yield Table("Params", ("key", "value"), sorted(run["params"].items()))
    if run["metrics"]:
        rows = [
            (k, format_number(m["value"]), m["step"], format_time(m["timestamp"]))
            for k, m in sorted(run["metrics"].items())
        ]
        yield Table("Metrics (latest)", ("key", "value", "step", "logged"), rows)
    if run["tags"]:
        yield Table("Tags", ("key", "value"), sorted(run["tags"].items()))
    if run["child_runs"]:
        child_rows = [
            (c["id"][:12], c["name"], run_status(c), c["step_state"],
             format_elapsed(c["duration_ms"]))
            for c in run["child_runs"]
        ]  # fmt: skip
        yield Table("Child runs", ("id", "name", "status", "step", "duration"), child_rows)
    if run["artifacts"]:
        total = sum(a["size"] for a in run["artifacts"])
        yield Line(
            f"{len(run['artifacts'])} artifact files, {format_size(total)} "
            f"(see `cairn artifacts list {run['id'][:12]}`)"
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
    render(compare_report(session().tracking, run_refs, only_differences), json)


def compare_report(
    tracking: TrackingService, run_refs: Sequence[str], only_differences: bool = False
) -> Report[dict[str, Any]]:
    """Runs' params and latest metrics, a row a key, each row saying whether they differ."""
    runs = [tracking.get_run(ref) for ref in run_refs]
    rows = [r for r in compare_runs(runs) if r.differs or not only_differences]
    data = {
        "runs": [{"id": r.id, "name": r.name} for r in runs],
        "rows": [
            {
                "kind": r.kind,
                "key": r.key,
                "values": [encode_float(v) if isinstance(v, float) else v for v in r.values],
                "differs": r.differs,
            }
            for r in rows
        ],
    }
    return Report(data, _compare_views)


def _compare_views(data: Mapping[str, Any]) -> Iterator[View]:
    header = ("", "key", *(f"{r['name']}\n{r['id'][:12]}" for r in data["runs"]))
    rows = [
        (
            Text("≠", style="bold yellow") if row["differs"] else "",
            Text(f"{row['kind']}s.{row['key']}", style="bold yellow" if row["differs"] else ""),
            *(_compared(row, v) for v in row["values"]),
        )
        for row in data["rows"]
    ]
    yield Table("Comparison (≠ marks a difference)", header, rows)


def _compared(row: Mapping[str, Any], value: str | float | None) -> Text:
    metric = row["kind"] == "metric"
    text = "—" if value is None else format_number(value) if metric else str(value)
    return Text(text, style="yellow" if row["differs"] else "")


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

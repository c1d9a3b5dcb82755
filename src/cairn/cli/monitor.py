"""``cairn monitor``: watch a served model's inputs against what it was trained on."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from cairn.cli.context import session
from cairn.cli.options import SECRET_VARIABLE, Json
from cairn.cli.output import console, errors, format_time
from cairn.cli.report import Fields, Line, Report, Table, render
from cairn.core.clock import parse_time
from cairn.core.monitor import LOG, monitor_to_dict, result_to_dict
from cairn.core.release import PromotionRequest, RequestState
from cairn.errors import AlreadyExists, InvalidInput
from cairn.monitoring.declared import declared_monitors, parse_choice, parse_duration

app = typer.Typer(help="Monitor served models: drift and data quality, window by window.",
                  no_args_is_help=True)  # fmt: skip


@app.command()
def create(
    name: Annotated[str, typer.Argument(help="The monitor's name.", show_default=False)],
    model: Annotated[
        str,
        typer.Option(help="The model reference watched (churn@production).", show_default=False),
    ],
    reference: Annotated[
        str,
        typer.Option(
            help="The data it was trained on: a CSV or Parquet file, or its data version "
            "(customers@3); the reference, profiled once.",
            show_default=False,
        ),
    ],
    window: Annotated[str, typer.Option(help="How much traffic one evaluation takes.")] = "1h",
    features: Annotated[
        str | None,
        typer.Option(
            help="The columns watched, comma-separated (default: every column).", show_default=False
        ),
    ] = None,
    method: Annotated[
        list[str] | None,
        typer.Option(
            help="A column's own drift method and threshold: COLUMN=METHOD[:THRESHOLD] "
            "(repeat it).",
            show_default=False,
        ),
    ] = None,
    share: Annotated[
        float, typer.Option(help="The share of drifted columns at which the dataset drifted.")
    ] = 0.5,
    on_drift: Annotated[
        str | None, typer.Option(help="What a drift does: retrain:PIPELINE.", show_default=False)
    ] = None,
    degraded_when: Annotated[
        str | None,
        typer.Option(
            help="When the model has degraded: a figure, a comparison and a number, such as "
            "'accuracy < 0.85' (realised on labels, or estimated before they come).",
            show_default=False,
        ),
    ] = None,
    on_degradation: Annotated[
        str | None,
        typer.Option(help="What a degradation does: retrain:PIPELINE.", show_default=False),
    ] = None,
    alert: Annotated[
        list[str] | None,
        typer.Option(
            help="Who is told when its state changes: log, webhook:URL (repeat it; default: log).",
            show_default=False,
        ),
    ] = None,
    alert_secret_env: Annotated[
        str,
        typer.Option(
            "--alert-secret-env",
            help="The environment variable holding the secret that signs webhook alerts "
            "(16+ characters).",
        ),
    ] = SECRET_VARIABLE,
    json_output: Json = False,
) -> None:
    """Make a monitor of a model, with its reference profiled from the training data."""
    chosen = dict(parse_choice(text, "--method") for text in method or [])
    watched = tuple(f.strip() for f in features.split(",") if f.strip()) if features else ()
    made = session().monitoring.create(
        name, model, reference, parse_duration(window, "--window"), watched, chosen, share,
        on_drift, tuple(alert or [LOG]), os.environ.get(alert_secret_env), degraded_when,
        on_degradation,
    )  # fmt: skip
    if json_output:
        render(Report(monitor_to_dict(made), lambda data: []), True)
        return
    console.print(f"Monitor {made.name} watches {made.model} in windows of {window}; "
                  f"reference {made.reference[:19]}…", markup=False)  # fmt: skip


@app.command()
def apply(json_output: Json = False) -> None:
    """Make the monitors cairn.yaml declares under `monitors:` that are not made yet."""
    from cairn.session import workspace

    current = session()
    secret = os.environ.get(SECRET_VARIABLE)
    done = []
    for declared in declared_monitors(workspace(current.settings)):
        try:
            current.monitoring.create(
                declared.name, declared.model, declared.reference, declared.window_seconds,
                declared.features, declared.choices, declared.share, declared.on_drift,
                declared.alerts, secret, declared.degraded_when, declared.on_degradation,
            )  # fmt: skip
            done.append({"monitor": declared.name, "made": True})
        except AlreadyExists:  # made before: its reference stays the one profiled then
            done.append({"monitor": declared.name, "made": False})
    render(Report(done, _applied_views), json_output)


def _applied_views(done: list[dict[str, Any]]) -> list[Any]:
    if not done:
        return [Line("cairn.yaml declares no monitors (a `monitors:` section)")]
    return [Line(f"{d['monitor']}: {'made' if d['made'] else 'there already'}") for d in done]


@app.command()
def run(
    name: Annotated[str, typer.Argument(help="The monitor.", show_default=False)],
    current: Annotated[
        Path | None,
        typer.Option(
            help="Evaluate this file (CSV or Parquet) instead of the logged traffic.",
            show_default=False,
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            help="The window's start (ISO 8601, UTC): default, its length before --until.",
            show_default=False,
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(help="The window's end (ISO 8601, UTC): default, now.", show_default=False),
    ] = None,
    json_output: Json = False,
) -> None:
    """Evaluate one window of the model's traffic (or a file) against the reference."""
    monitoring = session().monitoring
    found = monitoring.run(
        name, current,
        None if since is None else parse_time(since, "--since"),
        None if until is None else parse_time(until, "--until"),
    )  # fmt: skip
    retrained = monitoring.retrained.get((found.monitor, found.number))
    shown = {**result_to_dict(found), "retrained": retrained and retrained.to_dict()}
    render(Report(shown, _result_views), json_output)


def _result_views(data: dict[str, Any]) -> list[Any]:
    drifted = ", ".join(data["drifted"]) or "none"
    views: list[Any] = [Fields(f"Monitor {data['monitor']}, window {data['number']}", [
        ("state", data["state"]), ("rows", data["rows"]),
        ("window", f"{format_time(data['since'])} → {format_time(data['until'])}"),
        ("drift share", data["drift_share"]), ("drifted columns", drifted),
        ("quality findings", data["findings"]),
    ])]  # fmt: skip
    done = data.get("retrained")
    if done:
        release = (f"; promotion {done['request_id'][:8]} to the environment: "
                   f"{done['request_state']}" if done["request_id"] else "")  # fmt: skip
        made = done["version"] or "no new version"
        views.append(Line(f"Retrained: pipeline {done['pipeline']} run {done['run_id'][:8]} "
                          f"registered {made}{release}"))  # fmt: skip
    return views


@app.command()
def status(json_output: Json = False) -> None:
    """Every monitor, its state and its last window."""
    found = [{"monitor": monitor_to_dict(s.monitor),
              "last": None if s.last is None else result_to_dict(s.last)}
             for s in session().monitoring.status()]  # fmt: skip
    render(Report(found, _status_views), json_output)


def _status_views(found: list[dict[str, Any]]) -> list[Any]:
    if not found:
        return [Line("No monitors yet: cairn monitor create NAME --model REF --reference FILE")]
    rows = []
    for item in found:
        m, last = item["monitor"], item["last"]
        rows.append([m["name"], m["model"], m["state"],
                     None if last is None else format_time(last["until"]),
                     None if last is None else last["rows"],
                     None if last is None else ", ".join(last["drifted"]) or "none",
                     m["on_drift"]])  # fmt: skip
    columns = ["monitor", "model", "state", "last window", "rows", "drifted", "on drift"]
    return [Table("Monitors", columns, rows)]


@app.command()
def report(
    name: Annotated[str, typer.Argument(help="The monitor.", show_default=False)],
    number: Annotated[
        int | None, typer.Option(help="The evaluation (default: the last).", show_default=False)
    ] = None,
    html: Annotated[
        Path | None,
        typer.Option(help="Write a self-contained HTML report here.", show_default=False),
    ] = None,
    json_output: Json = False,
) -> None:
    """A window's full report: drift by column, data quality, distributions, history."""
    found = session().monitoring.report(name, number)
    if html is not None:
        from cairn.monitoring.html import render_html

        html.write_text(render_html(found), encoding="utf-8")
        if not json_output:
            console.print(f"Wrote {html}", markup=False)
            return
    render(Report(found, _report_views), json_output)


def _report_views(found: dict[str, Any]) -> list[Any]:
    views: list[Any] = [Line(f"{found['monitor']} window {found['number']}: {found['state']}, "
                             f"{found['rows']:,} rows")]  # fmt: skip
    if found["drift"]:
        views.append(Table("Drift by column", ["column", "kind", "method", "score", "threshold",
                                               "drifted"],
                           [[c["column"], c["kind"], c["method"], c["score"], c["threshold"],
                             "yes" if c["drifted"] else "no"]
                            for c in found["drift"]["columns"]]))  # fmt: skip
    realised = (found.get("performance") or {}).get("realised")
    if realised:
        coverage = found["performance"]["coverage"]
        views.append(Table(f"Performance (labels for {coverage:.0%} of the rows)",
                           ["metric", "value"], [[k, v] for k, v in realised.items()]))  # fmt: skip
    estimated = (found.get("performance") or {}).get("estimated")
    if estimated:
        views.append(Line(f"Estimated accuracy (from the model's confidence): "
                          f"{estimated['accuracy']:.3f} ({estimated['low']:.3f} to "
                          f"{estimated['high']:.3f})"))  # fmt: skip
    if found["findings"]:
        views.append(Table("Data quality", ["column", "finding", "what"],
                           [[f["column"], f["kind"], f["message"]]
                            for f in found["findings"]]))  # fmt: skip
    return views


@app.command()
def labels(
    file: Annotated[
        Path,
        typer.Argument(
            help="A CSV or Parquet file with columns request_id and label.", show_default=False
        ),
    ],
    model: Annotated[
        str, typer.Option(help="The model that answered those requests.", show_default=False)
    ],
    json_output: Json = False,
) -> None:
    """Keep labels that came in after the answers: a window's realised performance."""
    from cairn.monitoring.service import table_columns

    columns = table_columns(file, "labels file")
    missing = [c for c in ("request_id", "label") if c not in columns]
    if missing:
        has = ", ".join(columns)
        raise InvalidInput(f"labels file: expected columns request_id and label; "
                           f"{missing[0]!r} is not there (it has {has})")  # fmt: skip
    kept = session().monitoring.log_labels(
        model, [str(r) for r in columns["request_id"]], list(columns["label"])
    )
    render(Report({"model": model, "labels": kept},
                  lambda data: [Line(f"Kept {data['labels']:,} labels of {data['model']}")]),
           json_output)  # fmt: skip


@app.command()
def daemon(
    interval: Annotated[
        float, typer.Option(help="Seconds between looks for due monitors.", min=1)
    ] = 60.0,
    metrics_port: Annotated[
        int | None,
        typer.Option(help="Serve the drift gauges on this port (/metrics).", show_default=False),
    ] = None,
    once: Annotated[bool, typer.Option(help="Evaluate what is due once, and stop.")] = False,
    json_output: Json = False,
) -> None:
    """Evaluate every monitor when its window has passed, and judge the canaries the
    environments run on their live traffic, until stopped (Ctrl-C)."""
    from cairn.monitoring.schedule import MonitorGauges, run_due
    from cairn.releases.service import judge_canaries

    monitoring, releases = session().monitoring, session().releases
    gauges = None
    if metrics_port is not None:
        from prometheus_client import REGISTRY, start_http_server

        gauges = MonitorGauges(REGISTRY)
        start_http_server(metrics_port, addr="127.0.0.1")
    if once:
        found = [result_to_dict(r) for r in run_due(monitoring, gauges)]
        _judged(judge_canaries(releases))
        render(Report(found, _evaluated_views), json_output)
        return
    console.print(f"Evaluating monitors when due, looking every {interval:g} s (Ctrl-C stops)",
                  markup=False)  # fmt: skip
    try:
        while True:
            for result in run_due(monitoring, gauges):
                render(Report(result_to_dict(result), _result_views), json_output)
            _judged(judge_canaries(releases))
            time.sleep(interval)
    except KeyboardInterrupt:
        return


def _judged(requests: list[PromotionRequest]) -> None:
    """Say each canary judged for good (on stderr: --json prints the monitors' results)."""
    for request in requests:
        if request.state is not RequestState.CANARY:
            said = f"{request.state.value} ({request.decision})"
            errors.print(f"canary {request.ref} in {request.environment}: {said}", markup=False)


def _evaluated_views(found: list[dict[str, Any]]) -> list[Any]:
    if not found:
        return [Line("No monitor is due.")]
    rows = [[r["monitor"], r["number"], r["state"], r["rows"], ", ".join(r["drifted"]) or "none"]
            for r in found]  # fmt: skip
    return [Table("Evaluated", ["monitor", "window", "state", "rows", "drifted"], rows)]

"""``cairn quickstart``: log a real experiment, then show how to look at it."""

from __future__ import annotations

import math

from cairn.cli import runs
from cairn.cli.context import session
from cairn.cli.output import console
from cairn.cli.report import render
from cairn.core.run import Run
from cairn.quickstart import (
    CHAMPION,
    EXPERIMENT,
    MODEL_NAME,
    MONITOR,
    OBJECTIVE,
    STAGING,
    Candidate,
    run_quickstart,
)


def quickstart() -> None:
    """Train a few scikit-learn models, log them to Cairn, and show the best."""
    settings = session().settings
    where = settings.uri or str(settings.home)
    console.print(f"[bold]Cairn quickstart[/bold]: logging to {where}")

    def announce(candidate: Candidate) -> None:
        console.print(f"  training {candidate.family} {candidate.params}")

    logged = run_quickstart(announce)
    parent_id = logged.parent_id
    console.print(f"  every run trained on the data version {logged.data_ref} (its input)")
    order = f"metrics.{OBJECTIVE} DESC"
    console.print(
        f"\n[bold]Best runs[/bold]: cairn runs list --experiment {EXPERIMENT} "
        f'--filter "attributes.parent_run_id = \'{parent_id}\'" --order-by "{order}" --limit 3'
    )
    tracking = session().tracking
    ranked = sorted(tracking.child_runs(parent_id), key=_score, reverse=True)  # ties: newest
    render(runs.runs_report(tracking, ranked[:3], [], [OBJECTIVE]))
    best = ranked[0]
    console.print(
        f"\nThe best is registered as [bold]{logged.model_ref}[/bold] ({MODEL_NAME}@{CHAMPION}),"
        " with its package verified, its card and its lineage"
    )
    release = logged.release
    console.print(f"Released to {STAGING}: [bold]{release.state.value}[/bold] ({release.decision})")
    _serve(f"{MODEL_NAME}@{STAGING}", logged.sample, logged.labels)
    _monitor()
    console.print(
        "\nLook further:\n"
        f"  cairn runs show {best.id[:12]}                 # params, metrics, tags, artifacts\n"
        f"  cairn runs compare {best.id[:12]} {parent_id[:12]}   # side by side\n"
        f"  cairn artifacts list {best.id[:12]} report\n"
        f"  cairn data profile {logged.data_ref}         # rows; per column range, missing, bins\n"
        f"  cairn models show {MODEL_NAME}@{CHAMPION}   # files, signature, scan\n"
        f"  cairn models card {MODEL_NAME}@{CHAMPION}\n"
        f"  cairn lineage {MODEL_NAME}@{CHAMPION}       # back to the data version\n"
        f"  cairn requests show {release.id[:8]}              # each gate, with its evidence\n"
        f"  cairn envs history {STAGING}                # what ran there, when, why\n"
        f"  cairn runs list --experiment {EXPERIMENT} --json\n"
        "  cairn audit log --limit 10                  # who changed what, hash-chained\n"
        "  cairn audit verify                          # recompute it: was anything altered?\n"
        f"  cairn serve {MODEL_NAME}@{STAGING}   # answer requests (OIP v2, MLflow)\n"
        f"  cairn monitor report {MONITOR} --html report.html   # drift, quality, histograms\n"
        "  cairn monitor status                        # every monitor, its state\n"
        "  cairn server                                # the same store over HTTP"
    )


def _serve(reference: str, rows: list[list[float]], labels: list[int]) -> None:
    """Serve what staging runs, briefly, and score a few validation rows through it."""
    try:
        from cairn.server.serve_models import trial
    except ModuleNotFoundError as exc:
        console.print(f"(to serve it: pip install 'cairn-mlops[serving]'; {exc.name} is missing)")
        return
    version, predictions = trial(session(), reference, rows)
    console.print(
        f"Served [bold]{reference}[/bold] ({version}) over HTTP: POST /invocations with "
        f"{len(rows)} validation rows answered {predictions} (true classes: {labels})"
    )


def _monitor() -> None:
    """Watch staging's model, feed it a drifted batch, and show the retrain it causes."""
    try:
        from cairn.quickstart import RECALIBRATED, watch_and_retrain
    except ModuleNotFoundError as exc:
        console.print(
            f"(to monitor it: pip install 'cairn-mlops[monitoring]'; {exc.name} is missing)"
        )
        return
    console.print(f"\n[bold]Monitoring[/bold] {MONITOR} watches {MODEL_NAME}@{STAGING} against its "
                  "training data")  # fmt: skip
    watched = watch_and_retrain()
    calm, drifted = watched.calm, watched.drifted
    console.print(f"  window {calm.number}, the validation rows: [bold]{calm.state}[/bold] "
                  f"({len(calm.drifted)} columns drifted)")  # fmt: skip
    shown = ", ".join(drifted.drifted[:4]) + (" …" if len(drifted.drifted) > 4 else "")
    count = len(drifted.drifted)
    console.print(f"  window {drifted.number}, a batch read by an instrument that measures "
                  f"{RECALIBRATED:g}× larger: [bold red]{drifted.state}[/bold red] — "
                  f"{count} columns drifted ({shown}); the alert is logged")  # fmt: skip
    done = watched.retrained
    if drifted.state != "drift":
        console.print("  not enough columns drifted for the dataset to: no retrain")
    elif done is None:
        console.print("  (already drifting before this window: no new retrain)")
    elif done.version is None:
        console.print(f"  retrained by {done.pipeline}: no new version (its steps were cached)")
    else:
        console.print(f"  retrained on {watched.data_ref} by {done.pipeline}: "
                      f"[bold]{done.version}[/bold]; released to {STAGING}: "
                      f"[bold]{done.request_state}[/bold]")  # fmt: skip


def _score(run: Run) -> tuple[bool, float]:
    """The objective, as the printed command orders by it: runs without it (or with NaN)
    come last."""
    metric = run.metrics.get(OBJECTIVE)
    if metric is None or math.isnan(metric.value):
        return (False, 0.0)
    return (True, metric.value)

"""The Cairn side of benchmarks/tracking.py: one task per process, JSON in (argv[1]), JSON out.

Runs under Cairn's virtualenv; the server address comes from ``CAIRN_URI``.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import time

import _tracking_data as data
import cairn


def log_metric(args: dict) -> dict:
    """Per-call cost of ``run.log_metric`` in a tight loop, timed in blocks of ``block``."""
    calls, block = args["calls"], args["block"]
    points = data.metric_points(calls)
    blocks = [points[i : i + block] for i in range(0, calls, block)]
    per_call_ns = []
    run = cairn.start_run(experiment="bench-log-metric")
    log = run.log_metric
    perf = time.perf_counter_ns
    started = perf()
    for chunk in blocks:
        t0 = perf()
        for key, value, step in chunk:
            log(key, value, step=step)
        per_call_ns.append((perf() - t0) / len(chunk))
    loop_ns = perf() - started
    t0 = perf()
    run.flush()
    flush_s = (perf() - t0) / 1e9
    run.end()
    return {
        "per_call_ns": per_call_ns,
        "mean_ns": loop_ns / calls,
        "flush_s": flush_s,
        "calls": calls,
    }


def _name_user() -> None:
    """Send the run's user in the body, as servers from before token identity required.

    Today's client leaves it out (the server takes the token's account); a baseline server
    built before that refuses a run without one. Used by benchmarks/audit_cost.py only.
    """
    import cairn.client.http as http

    http._as_caller = lambda new: new  # type: ignore[attr-defined]


def ingest(args: dict) -> dict:
    """Points/s from the first ``log_metric`` to the return of ``flush()``."""
    count = args["points"]
    points = data.metric_points(count)
    if args.get("name_user"):
        _name_user()
    run = cairn.start_run(experiment="bench-ingest")
    log = run.log_metric
    perf = time.perf_counter
    t0 = perf()
    for key, value, step in points:
        log(key, value, step=step)
    logged = perf()
    run.flush()
    seconds = perf() - t0
    run.end()
    stored = len(cairn.get_metric_history(run.id, points[0][0]))
    return {
        "seconds": seconds,
        "loop_seconds": logged - t0,
        "points": count,
        "points_per_s": count / seconds,
        "stored_first_key": stored,
        "expected_first_key": sum(1 for p in points if p[0] == points[0][0]),
        "digest": data.digest_points(points),
    }


def populate(args: dict) -> dict:
    """One run per generated row: start, params, metrics (one batch), end."""
    runs = data.run_values(args["runs"])
    t0 = time.perf_counter()
    for index, (params, metrics) in enumerate(runs):
        run = cairn.start_run(experiment=data.SEARCH_EXPERIMENT, name=data.run_name(index))
        run.log_params(params)
        run.log_metrics(metrics, step=0)
        run.end()
    return {
        "seconds": time.perf_counter() - t0,
        "runs": len(runs),
        "digest": data.digest_runs(runs),
    }


def search(args: dict) -> dict:
    def once() -> list:
        return cairn.search_runs(
            experiment=data.SEARCH_EXPERIMENT,
            filter=data.SEARCH_FILTER,
            order_by=[data.SEARCH_ORDER],
            limit=data.SEARCH_LIMIT,
        )

    for _ in range(args["warmup"]):
        once()
    seconds = []
    for _ in range(args["reps"]):
        t0 = time.perf_counter()
        found = once()
        seconds.append(time.perf_counter() - t0)
    return {
        "seconds": seconds,
        "count": len(found),
        "params_per_run": len(found[0].params) if found else 0,
        "metrics_per_run": len(found[0].metrics) if found else 0,
        "digest": data.digest_names(run.name for run in found),
    }


def versions(_args: dict) -> dict:
    return {
        "python": sys.version.split()[0],
        "cairn": cairn.__version__,
        "sqlite": sqlite3.sqlite_version,
    }


TASKS = {
    "log_metric": log_metric,
    "ingest": ingest,
    "populate": populate,
    "search": search,
    "versions": versions,
}

if __name__ == "__main__":
    arguments = json.loads(sys.argv[1])
    print(json.dumps(TASKS[arguments["task"]](arguments)))

"""The MLflow side of benchmarks/tracking.py: one task per process, JSON in (argv[1]), JSON out.

Runs under benchmarks/.venv-mlflow with the stock client; the server address comes from
``MLFLOW_TRACKING_URI``. Cairn is not importable here, on purpose.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import time

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric, Param

import _tracking_data as data

BATCH = 1000  # MLflow's limit of metrics per log_batch request


def _experiment_id(client: MlflowClient, name: str) -> str:
    found = client.get_experiment_by_name(name)
    return found.experiment_id if found is not None else client.create_experiment(name)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def log_metric(args: dict) -> dict:
    """Per-call cost of ``client.log_metric`` (synchronous: one HTTP request per call), or
    of ``mlflow.log_metric(..., synchronous=False)`` with ``"mode": "async"``."""
    calls, block = args["calls"], args["block"]
    points = data.metric_points(calls)
    blocks = [points[i : i + block] for i in range(0, calls, block)]
    client = MlflowClient()
    experiment_id = _experiment_id(client, "bench-log-metric")
    perf = time.perf_counter_ns
    per_call_ns = []
    if args["mode"] == "sync":
        run_id = client.create_run(experiment_id).info.run_id
        log = client.log_metric
        started = perf()
        for chunk in blocks:
            t0 = perf()
            for key, value, step in chunk:
                log(run_id, key, value, step=step)
            per_call_ns.append((perf() - t0) / len(chunk))
        loop_ns = perf() - started
        flush_s = 0.0
        client.set_terminated(run_id)
    else:
        with mlflow.start_run(experiment_id=experiment_id):
            log = mlflow.log_metric
            started = perf()
            for chunk in blocks:
                t0 = perf()
                for key, value, step in chunk:
                    log(key, value, step=step, synchronous=False)
                per_call_ns.append((perf() - t0) / len(chunk))
            loop_ns = perf() - started
            t0 = perf()
            mlflow.flush_async_logging()
            flush_s = (perf() - t0) / 1e9
    return {
        "per_call_ns": per_call_ns,
        "mean_ns": loop_ns / calls,
        "flush_s": flush_s,
        "calls": calls,
    }


def ingest(args: dict) -> dict:
    """Points/s through ``client.log_batch`` of 1,000 metrics at a time."""
    count = args["points"]
    points = data.metric_points(count)
    client = MlflowClient()
    run_id = client.create_run(_experiment_id(client, "bench-ingest")).info.run_id
    perf = time.perf_counter
    t0 = perf()
    for start in range(0, count, BATCH):
        stamp = _now_ms()
        metrics = [Metric(k, v, stamp, s) for k, v, s in points[start : start + BATCH]]
        client.log_batch(run_id, metrics=metrics)
    seconds = perf() - t0
    client.set_terminated(run_id)
    stored = len(client.get_metric_history(run_id, points[0][0]))
    return {
        "seconds": seconds,
        "points": count,
        "points_per_s": count / seconds,
        "stored_first_key": stored,
        "expected_first_key": sum(1 for p in points if p[0] == points[0][0]),
        "digest": data.digest_points(points),
    }


def populate(args: dict) -> dict:
    """One run per generated row: create, params and metrics in one log_batch, terminate."""
    runs = data.run_values(args["runs"])
    client = MlflowClient()
    experiment_id = _experiment_id(client, data.SEARCH_EXPERIMENT)
    t0 = time.perf_counter()
    for index, (params, metrics) in enumerate(runs):
        run_id = client.create_run(experiment_id, run_name=data.run_name(index)).info.run_id
        stamp = _now_ms()
        client.log_batch(
            run_id,
            metrics=[Metric(k, v, stamp, 0) for k, v in metrics.items()],
            params=[Param(k, v) for k, v in params.items()],
        )
        client.set_terminated(run_id)
    return {
        "seconds": time.perf_counter() - t0,
        "runs": len(runs),
        "digest": data.digest_runs(runs),
    }


def search(args: dict) -> dict:
    client = MlflowClient()
    # Resolved once, outside the timing (Cairn's search resolves the name on every call).
    experiment_id = client.get_experiment_by_name(data.SEARCH_EXPERIMENT).experiment_id

    def once() -> list:
        return client.search_runs(
            [experiment_id],
            filter_string=data.SEARCH_FILTER,
            order_by=[data.SEARCH_ORDER],
            max_results=data.SEARCH_LIMIT,
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
        "params_per_run": len(found[0].data.params) if found else 0,
        "metrics_per_run": len(found[0].data.metrics) if found else 0,
        "digest": data.digest_names(run.info.run_name for run in found),
    }


def versions(_args: dict) -> dict:
    return {
        "python": sys.version.split()[0],
        "mlflow": mlflow.__version__,
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

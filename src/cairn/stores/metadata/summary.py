"""Each run's params, tags and latest metrics, copied as JSON into its own ``runs`` row.

A search page of 500 runs would otherwise gather ten thousand rows from three tables; with
the copies it reads one row per run. The tables stay the source of truth (and what filters
and orderings use): a write rewrites the copies it touched from them, in the same
transaction, so a copy is never ahead of or behind its rows.

Metrics are copied as ``[[key, value, step, timestamp], …]``, a non-finite value as the
string ``"NaN"``, ``"Infinity"`` or ``"-Infinity"`` (JSON has neither).
"""

from __future__ import annotations

import math
from typing import Any

import orjson
from sqlalchemy import Connection, Row, select, update

from cairn.core.codec import decode_float, encode_float
from cairn.core.run import LIFECYCLES, RUN_STATUSES, Metric, Run, metric_from_point
from cairn.stores.metadata import schema as t


def refresh(conn: Connection, pk: int, *, params: bool, tags: bool, metrics: bool) -> None:
    """Rewrite the run's copies of the parts a write changed."""
    values: dict[str, str] = {}
    if params:
        values["params_json"] = _string_map(conn, t.params, pk)
    if tags:
        values["tags_json"] = _string_map(conn, t.tags, pk)
    if metrics:
        lm = t.latest_metrics.c
        rows = conn.execute(
            select(lm.key, lm.value, lm.step, lm.timestamp).where(lm.run_pk == pk).order_by(lm.key)
        )
        values["metrics_json"] = metrics_json(rows)
    if values:
        conn.execute(update(t.runs).where(t.runs.c.pk == pk).values(**values))


def metrics_json(rows: Any) -> str:
    """``(key, value, step, timestamp)`` rows, value NULL for NaN, as the stored copy."""
    latest = [
        [key, encode_float(math.nan if value is None else value), step, timestamp]
        for key, value, step, timestamp in rows
    ]
    return orjson.dumps(latest).decode()


def string_map_json(values: dict[str, str]) -> str:
    return orjson.dumps(values).decode()


def _string_map(conn: Connection, table: Any, pk: int) -> str:
    rows = conn.execute(
        select(table.c.key, table.c.value).where(table.c.run_pk == pk).order_by(table.c.key)
    )
    return string_map_json(dict(rows.all()))


def run_from_row(row: Row[Any]) -> Run:
    """A run from its ``runs`` row alone."""
    metrics: dict[str, Metric] = {}
    for point in orjson.loads(row.metrics_json):
        if type(point[1]) is not float:  # "NaN", "Infinity" or "-Infinity"
            point[1] = decode_float(point[1], f"metrics[{point[0]!r}]")
        metrics[point[0]] = metric_from_point(point)
    return Run(
        id=row.id,
        experiment_id=row.experiment_id,
        name=row.name,
        status=RUN_STATUSES[row.status],
        start_time=row.start_time,
        end_time=row.end_time,
        user=row.user_name,
        parent_id=row.parent_id,
        git_commit=row.git_commit,
        source=row.source,
        lifecycle=LIFECYCLES[row.lifecycle],
        params=orjson.loads(row.params_json),
        metrics=metrics,
        tags=orjson.loads(row.tags_json),
    )

"""Recording to a run: params, tags and metrics in one batch, and reading a metric back.

Metric ingest is the hot path: a batch becomes one packed chunk per metric key (see
``chunks.py``) plus one upsert of the latest point per key, in the transaction that
checks the run may be written. ``write_batch`` is shared with ``runs.record_runs``, which
records whole finished runs in one transaction.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, Table, select

from cairn.core.audit import AuditEvent
from cairn.core.limits import check_key, check_params, check_tags
from cairn.core.packing import pack
from cairn.core.pipeline import TAGS as PIPELINE_TAGS
from cairn.core.run import Metric, MetricBatch, MetricPoint, MetricSeries, as_batch
from cairn.errors import ParamConflict
from cairn.localfs.digest import digest_of, hasher
from cairn.stores.metadata import audit, pipelines, summary
from cairn.stores.metadata import schema as t
from cairn.stores.metadata.chunks import history
from cairn.stores.metadata.engine import dialect_insert, read_connection, write_transaction
from cairn.stores.metadata.lookup import run_for_write, run_key
from cairn.stores.metadata.system_tags import check_system_tags


class SqlRecording:
    """``log_batch`` and ``get_metric_history`` of the metadata store."""

    def __init__(self, engine: Engine, audited: Callable[[AuditEvent], None]) -> None:
        self.engine = engine
        self._audited = audited

    def log_batch(
        self,
        run_id: str,
        metrics: MetricBatch | Sequence[MetricPoint] = (),
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
        batch_id: str | None = None,
    ) -> None:
        params, tags = check_params(params or {}), check_tags(tags or {})
        batch = as_batch(metrics)
        for key in batch:
            check_key(key, "metrics")
        with write_transaction(self.engine) as conn:
            pk = run_for_write(conn, run_id, f"log to run {run_id}")
            if batch_id is not None and not _claim_batch(conn, pk, batch_id):
                return  # this batch was stored before; its retry changes nothing
            check_system_tags(conn, pk, run_id, tags)
            event = write_batch(conn, pk, run_id, batch, params, tags, batch_id)
        self._audited(event)

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        c = t.metric_chunks.c
        with read_connection(self.engine) as conn:
            pk = run_key(conn, run_id)
            rows = conn.execute(
                select(c.steps, c.timestamps, c["values"])
                .where(c.run_pk == pk, c.key == key)
                .order_by(c.id)
            )
            return history(key, ((r[0], r[1], r[2]) for r in rows))


def write_batch(
    conn: Connection,
    pk: int,
    run_id: str,
    batch: MetricBatch,
    params: Mapping[str, str],
    tags: Mapping[str, str],
    batch_id: str | None = None,
) -> AuditEvent:
    """Store a checked batch for the run ``pk``; its audit event, to report once committed.

    Raises:
        ParamConflict: a param the run has already, with another value.
    """
    if params:
        _insert_params(conn, pk, run_id, params)
    if tags:
        upsert(conn, t.tags, ["run_pk", "key"], ["value"], _keyed_rows(pk, tags))
    digest = _insert_chunks(conn, pk, batch) if batch else None
    summary.refresh(conn, pk, params=bool(params), tags=bool(tags), metrics=bool(batch))
    if not PIPELINE_TAGS.isdisjoint(tags):
        pipelines.refresh(conn, pk)
    # One event per batch, not per point: the points are named by their digest.
    payload = {
        "batch_id": batch_id,
        "metrics": {key: len(series) for key, series in batch.items()},
        "params": dict(params),
        "tags": dict(tags),
    }
    return audit.record(conn, "run.log_batch", "run", run_id, payload, digest)


def upsert(
    conn: Connection, table: Table, keys: list[str], values: list[str], rows: list[dict[str, Any]]
) -> None:
    """Insert ``rows``; where ``keys`` are taken, overwrite the ``values`` columns."""
    statement = dialect_insert(conn, table)
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=keys, set_={c: statement.excluded[c] for c in values}
        ),
        rows,
    )


def _claim_batch(conn: Connection, pk: int, batch_id: str) -> bool:
    seen = conn.execute(
        select(t.ingest_batches.c.batch_id).where(t.ingest_batches.c.batch_id == batch_id)
    ).first()
    if seen is not None:
        return False
    conn.execute(t.ingest_batches.insert().values(batch_id=batch_id, run_pk=pk))
    return True


def _insert_params(conn: Connection, pk: int, run_id: str, params: Mapping[str, str]) -> None:
    stored = conn.execute(
        select(t.params.c.key, t.params.c.value).where(
            t.params.c.run_pk == pk, t.params.c.key.in_(list(params))
        )
    )
    existing = {row.key: row.value for row in stored}
    for key, value in params.items():
        if key in existing and existing[key] != value:
            raise ParamConflict(
                f"param {key!r} of run {run_id} is already {existing[key]!r}; params are "
                f"immutable, so it cannot become {value!r} (log it under another key)"
            )
    new = {k: v for k, v in params.items() if k not in existing}
    if new:
        conn.execute(t.params.insert(), _keyed_rows(pk, new))


def _insert_chunks(conn: Connection, pk: int, batch: MetricBatch) -> str:
    """Store the batch's chunks; return the digest of what was stored, for the audit
    trail: BLAKE3 over each key and its packed steps, timestamps and values."""
    state = hasher()
    rows = []
    for key, series in batch.items():
        if not len(series):
            continue
        columns = (
            pack(series.steps, "q"),
            pack(series.timestamps, "q"),
            pack(series.values, "d"),
        )
        for part in (key.encode(), *columns):
            state.update(len(part).to_bytes(8, "little"))
            state.update(part)
        steps, timestamps, values = columns
        rows.append(
            {
                "run_pk": pk,
                "key": key,
                "count": len(series),
                "first_step": min(series.steps),
                "last_step": max(series.steps),
                "steps": steps,
                "timestamps": timestamps,
                "values": values,
            }
        )
    if rows:
        conn.execute(t.metric_chunks.insert(), rows)
        _upsert_latest(conn, [_latest_row(pk, k, s) for k, s in batch.items() if len(s)])
    return digest_of(state)


def _upsert_latest(conn: Connection, rows: list[dict[str, Any]]) -> None:
    statement = dialect_insert(conn, t.latest_metrics)
    new, old = statement.excluded, t.latest_metrics.c
    newer = (new.step > old.step) | ((new.step == old.step) & (new.timestamp >= old.timestamp))
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=["run_pk", "key"],
            set_={"value": new.value, "step": new.step, "timestamp": new.timestamp},
            where=newer,
        ),
        rows,
    )


def _latest_row(pk: int, key: str, series: MetricSeries) -> dict[str, Any]:
    best = series.latest()
    return {
        "run_pk": pk,
        "key": key,
        "value": _stored(series.values[best]),
        "step": series.steps[best],
        "timestamp": series.timestamps[best],
    }


def _keyed_rows(pk: int, values: Mapping[str, str]) -> list[dict[str, Any]]:
    return [{"run_pk": pk, "key": k, "value": v} for k, v in values.items()]


def _stored(value: float) -> float | None:
    return None if math.isnan(value) else value

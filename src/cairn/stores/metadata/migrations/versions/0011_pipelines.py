"""Pipeline runs, step runs and cache entries: tables of their own, filled from the runs.

Until this revision a pipeline's step cache was looked up by searching the runs for tags;
the store now keeps these tables from a run's system tags as it writes them. Runs recorded
before are copied in here, by the rules the store keeps them by, spelled out so that this
migration keeps meaning what it meant when later code changes: a run tagged
``cairn.run.kind=pipeline`` is a pipeline run; one tagged ``cairn.step`` a step run; a
finished, not deleted one whose ``cairn.cache_key`` is a digest and whose
``cairn.output.digest`` is not empty, a cache entry.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from itertools import islice
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_CACHE_KEY = re.compile(r"[a-z0-9]{1,15}:[0-9a-f]{64}")
_ENDED_STATES = {"RUNNING": "running", "FAILED": "failed", "KILLED": "killed"}
_TAGS = ("cairn.run.kind", "cairn.pipeline", "cairn.step", "cairn.step.state",
         "cairn.cache_key", "cairn.output.digest")  # fmt: skip
_CHUNK = 5_000
RunKey = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    pipeline_runs = op.create_table(
        "pipeline_runs",
        sa.Column("run_pk", RunKey, sa.ForeignKey("runs.pk"), primary_key=True),
        sa.Column("run_id", sa.String(32), nullable=False, unique=True),
        sa.Column("experiment_id", sa.String(32), nullable=False),
        sa.Column("pipeline", sa.Text, nullable=False),
        sa.Column("parent_run_id", sa.String(32), nullable=True),
        sa.Column("start_time", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_pipeline_runs_experiment", "pipeline_runs", ["experiment_id", "start_time"])
    step_runs = op.create_table(
        "step_runs",
        sa.Column("run_pk", RunKey, sa.ForeignKey("runs.pk"), primary_key=True),
        sa.Column("run_id", sa.String(32), nullable=False, unique=True),
        sa.Column("pipeline_run_id", sa.String(32), nullable=True),
        sa.Column("experiment_id", sa.String(32), nullable=False),
        sa.Column("step", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("cache_key", sa.Text, nullable=True),
        sa.Column("output_digest", sa.Text, nullable=True),
    )
    op.create_index("ix_step_runs_pipeline_run", "step_runs", ["pipeline_run_id"])
    cache_entries = op.create_table(
        "cache_entries",
        sa.Column("run_pk", RunKey, sa.ForeignKey("runs.pk"), primary_key=True),
        sa.Column("experiment_id", sa.String(32), nullable=False),
        sa.Column("cache_key", sa.String(80), nullable=False),
        sa.Column("user_name", sa.String(250), nullable=False),
        sa.Column("output_digest", sa.Text, nullable=False),
        sa.Column("start_time", sa.BigInteger, nullable=False),
    )
    op.create_index(
        "ix_cache_entries_key",
        "cache_entries",
        ["experiment_id", "cache_key", "start_time", "run_pk"],
    )
    op.create_index(
        "ix_cache_entries_key_user",
        "cache_entries",
        ["experiment_id", "cache_key", "user_name", "start_time", "run_pk"],
    )
    bind = op.get_bind()
    for rows in _chunks(_tagged_runs(bind)):
        _insert(bind, pipeline_runs, [p for run in rows if (p := _pipeline_run(run))])
        _insert(bind, step_runs, [s for run in rows if (s := _step_run(run))])
        _insert(bind, cache_entries, [e for run in rows if (e := _cache_entry(run))])


def downgrade() -> None:
    for table in ("cache_entries", "step_runs", "pipeline_runs"):
        op.drop_table(table)  # their indexes go with them


def _tagged_runs(bind: sa.Connection) -> Iterator[dict[str, Any]]:
    """Each run with any of the tags, with those tags, in the order of its key."""
    query = sa.text(
        "SELECT r.pk, r.id, r.experiment_id, r.status, r.lifecycle, r.user_name, "
        'r.parent_id, r.start_time, r.end_time, t."key", t.value '
        'FROM runs r JOIN tags t ON t.run_pk = r.pk WHERE t."key" IN :names ORDER BY r.pk'
    ).bindparams(sa.bindparam("names", expanding=True))
    rows = bind.execute(query, {"names": list(_TAGS)})
    run: dict[str, Any] | None = None
    for row in rows.mappings():
        if run is None or run["pk"] != row["pk"]:
            if run is not None:
                yield run
            run = {k: v for k, v in row.items() if k not in ("key", "value")} | {"tags": {}}
        run["tags"][row["key"]] = row["value"]
    if run is not None:
        yield run


def _pipeline_run(run: dict[str, Any]) -> dict[str, Any] | None:
    tags = run["tags"]
    if tags.get("cairn.run.kind") != "pipeline":
        return None
    return {"run_pk": run["pk"], "run_id": run["id"], "experiment_id": run["experiment_id"],
            "pipeline": tags.get("cairn.pipeline", ""), "parent_run_id": run["parent_id"],
            "start_time": run["start_time"]}  # fmt: skip


def _step_run(run: dict[str, Any]) -> dict[str, Any] | None:
    tags = run["tags"]
    if "cairn.step" not in tags:
        return None
    finished = "cached" if tags.get("cairn.step.state") == "cached" else "ran"
    return {"run_pk": run["pk"], "run_id": run["id"], "pipeline_run_id": run["parent_id"],
            "experiment_id": run["experiment_id"], "step": tags["cairn.step"],
            "state": _ENDED_STATES.get(run["status"], finished),
            "cache_key": tags.get("cairn.cache_key"),
            "output_digest": tags.get("cairn.output.digest")}  # fmt: skip


def _cache_entry(run: dict[str, Any]) -> dict[str, Any] | None:
    tags = run["tags"]
    key, output = tags.get("cairn.cache_key", ""), tags.get("cairn.output.digest")
    entry = run["status"] == "FINISHED" and run["lifecycle"] == "active"
    if not (entry and _CACHE_KEY.fullmatch(key) and output):
        return None
    return {"run_pk": run["pk"], "experiment_id": run["experiment_id"], "cache_key": key,
            "user_name": run["user_name"], "output_digest": output,
            "start_time": run["start_time"]}  # fmt: skip


def _chunks(runs: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    while chunk := list(islice(runs, _CHUNK)):
        yield chunk


def _insert(bind: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    if rows:
        bind.execute(table.insert(), rows)

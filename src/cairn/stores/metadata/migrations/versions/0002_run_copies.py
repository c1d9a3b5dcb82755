"""Runs carry JSON copies of their params, tags and latest metrics, filled for existing runs.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import math
from itertools import groupby

import orjson
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_COLUMNS = ("params_json", "tags_json", "metrics_json")
_NON_FINITE = {math.inf: "Infinity", -math.inf: "-Infinity"}


def upgrade() -> None:
    for name in _COLUMNS:
        op.add_column("runs", sa.Column(name, sa.Text, nullable=False, server_default="{}"))
    bind = op.get_bind()
    _copy_string_maps(bind, "params", "params_json")
    _copy_string_maps(bind, "tags", "tags_json")
    _copy_latest_metrics(bind)


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        for name in _COLUMNS:
            batch.drop_column(name)


def _copy_string_maps(bind: sa.Connection, table: str, column: str) -> None:
    rows = bind.execute(
        sa.text(f'SELECT run_pk, "key", value FROM {table} ORDER BY run_pk, "key"')  # noqa: S608
    )
    updates = [
        {"pk": pk, "copy": orjson.dumps({key: value for _, key, value in group}).decode()}
        for pk, group in groupby(rows, key=lambda row: row[0])
    ]
    if updates:
        statement = f"UPDATE runs SET {column} = :copy WHERE pk = :pk"  # noqa: S608
        bind.execute(sa.text(statement), updates)


def _copy_latest_metrics(bind: sa.Connection) -> None:
    # The same shape as cairn.stores.metadata.summary writes, spelled out here so that
    # this migration keeps meaning what it meant when later code changes.
    rows = bind.execute(
        sa.text(
            'SELECT run_pk, "key", value, step, "timestamp" FROM latest_metrics '
            'ORDER BY run_pk, "key"'
        )
    )
    updates = []
    for pk, group in groupby(rows, key=lambda row: row[0]):
        latest = [
            [key, _json_float(value), step, timestamp] for _, key, value, step, timestamp in group
        ]
        updates.append({"pk": pk, "copy": orjson.dumps(latest).decode()})
    if updates:
        bind.execute(sa.text("UPDATE runs SET metrics_json = :copy WHERE pk = :pk"), updates)


def _json_float(value: float | None) -> float | str:
    if value is None:  # NULL stores NaN
        return "NaN"
    return _NON_FINITE.get(value, value)

"""Experiments, runs, params, tags, metric chunks, latest metrics, ingest batches, artifacts.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

RunKey = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(250), nullable=False, unique=True),
        sa.Column("lifecycle", sa.String(16), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "runs",
        sa.Column("pk", RunKey, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(32), nullable=False, unique=True),
        sa.Column("experiment_id", sa.String(32), sa.ForeignKey("experiments.id"), nullable=False),
        sa.Column("name", sa.String(250), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("start_time", sa.BigInteger, nullable=False),
        sa.Column("end_time", sa.BigInteger, nullable=True),
        sa.Column("user_name", sa.String(250), nullable=False),
        sa.Column("parent_id", sa.String(32), nullable=True),
        sa.Column("git_commit", sa.String(64), nullable=True),
        sa.Column("source", sa.Text, nullable=True),
        sa.Column("lifecycle", sa.String(16), nullable=False),
    )
    op.create_index(
        "ix_runs_experiment_start", "runs", ["experiment_id", "lifecycle", "start_time"]
    )
    op.create_index("ix_runs_parent", "runs", ["parent_id"])
    for name in ("params", "tags"):
        op.create_table(
            name,
            sa.Column("run_pk", RunKey, sa.ForeignKey("runs.pk"), primary_key=True),
            sa.Column("key", sa.String(250), primary_key=True),
            sa.Column("value", sa.Text, nullable=False),
        )
    op.create_index("ix_params_key_value", "params", ["key", "value"])
    op.create_table(
        "metric_chunks",
        sa.Column("id", RunKey, primary_key=True, autoincrement=True),
        sa.Column("run_pk", RunKey, sa.ForeignKey("runs.pk"), nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("first_step", sa.BigInteger, nullable=False),
        sa.Column("last_step", sa.BigInteger, nullable=False),
        sa.Column("steps", sa.LargeBinary, nullable=False),
        sa.Column("timestamps", sa.LargeBinary, nullable=False),
        sa.Column("values", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_metric_chunks_run_key", "metric_chunks", ["run_pk", "key"])
    op.create_table(
        "latest_metrics",
        sa.Column("run_pk", RunKey, sa.ForeignKey("runs.pk"), primary_key=True),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("step", sa.BigInteger, nullable=False),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
        sa.Column("value", sa.Double, nullable=True),
    )
    op.create_index("ix_latest_metrics_key_value", "latest_metrics", ["key", "value"])
    op.create_table(
        "ingest_batches",
        sa.Column("batch_id", sa.String(64), primary_key=True),
        sa.Column("run_pk", RunKey, sa.ForeignKey("runs.pk"), nullable=False),
    )
    op.create_table(
        "run_artifacts",
        sa.Column("run_pk", RunKey, sa.ForeignKey("runs.pk"), primary_key=True),
        sa.Column("path", sa.String(1024), primary_key=True),
        sa.Column("digest", sa.String(80), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    for name in (
        "run_artifacts",
        "ingest_batches",
        "latest_metrics",
        "metric_chunks",
        "tags",
        "params",
        "runs",
        "experiments",
    ):
        op.drop_table(name)

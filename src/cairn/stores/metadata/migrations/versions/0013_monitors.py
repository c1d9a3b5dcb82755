"""Monitors and their evaluations.

A monitor watches a model reference's traffic against a reference profile (an object in
the artifact store); its definition is kept as JSON beside the columns it is looked up by.
Each evaluation of a window is a row of ``monitor_results``, numbered per monitor, with its
full report as an object. Both are held by their model: whoever may read the model may
read its monitors. A webhook may belong to one monitor (``webhooks.monitor``): it is posted
that monitor's changes of state, through the same outbox, and never a release's events.
Labels that arrive after the answers (``labels``) are kept by model and request id, the
last one given for a request standing.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None
_KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite increments INTEGER keys


def upgrade() -> None:
    op.create_table(
        "monitors",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("model", sa.String(128), sa.ForeignKey("models.name"), nullable=False),
        sa.Column("definition", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
    )
    op.create_table(
        "monitor_results",
        sa.Column("id", _KEY, primary_key=True, autoincrement=True),
        sa.Column("monitor", sa.String(128), sa.ForeignKey("monitors.name"), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("since", sa.BigInteger, nullable=False),
        sa.Column("until", sa.BigInteger, nullable=False),
        sa.Column("rows", sa.BigInteger, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("drift_share", sa.Double, nullable=False),
        sa.Column("drifted", sa.Text, nullable=False),
        sa.Column("findings", sa.Integer, nullable=False),
        sa.Column("report", sa.String(80), nullable=False),
        sa.Column("evaluated_at", sa.BigInteger, nullable=False),
        sa.Column("evaluated_by", sa.String(255), nullable=False),
        sa.UniqueConstraint("monitor", "number", name="uq_monitor_results_number"),
    )
    op.create_table(
        "labels",
        sa.Column("model", sa.String(128), sa.ForeignKey("models.name"), primary_key=True),
        sa.Column("request_id", sa.String(128), primary_key=True),
        sa.Column("label", sa.Text, nullable=False),
        sa.Column("logged_at", sa.BigInteger, nullable=False),
        sa.Column("logged_by", sa.String(255), nullable=False),
    )
    with op.batch_alter_table("webhooks") as table:
        table.add_column(sa.Column("monitor", sa.String(128), nullable=True))


def downgrade() -> None:
    op.drop_table("labels")
    with op.batch_alter_table("webhooks") as table:
        table.drop_column("monitor")
    op.drop_table("monitor_results")
    op.drop_table("monitors")

"""Model traffic: the index of what a served model version answered.

A model server writes its requests and answers in batches, each a columnar file in the
artifact store; this table says which model version each batch is of, the time it spans,
how many rows it holds and its object, so a window of traffic is one indexed query. The
files are held by their model (``model_objects``): whoever may read the model may read its
traffic.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None
_KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite increments INTEGER keys


def upgrade() -> None:
    op.create_table(
        "model_traffic",
        sa.Column("id", _KEY, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(128), sa.ForeignKey("models.name"), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("first_at", sa.BigInteger, nullable=False),
        sa.Column("last_at", sa.BigInteger, nullable=False),
        sa.Column("rows", sa.BigInteger, nullable=False),
        sa.Column("digest", sa.String(80), nullable=False),
        sa.Column("logged_at", sa.BigInteger, nullable=False),
        sa.Column("logged_by", sa.String(255), nullable=False),
    )
    op.create_index("ix_model_traffic_window", "model_traffic", ["model", "last_at"])


def downgrade() -> None:
    op.drop_index("ix_model_traffic_window", "model_traffic")
    op.drop_table("model_traffic")

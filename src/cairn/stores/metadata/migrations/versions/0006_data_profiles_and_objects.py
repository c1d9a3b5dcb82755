"""Data versions keep the digest of their tabular profile (empty when they have none),
and which objects each dataset is made of (so a server can tell who may read an object).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("data_versions") as batch:
        batch.add_column(sa.Column("profile", sa.String(80), nullable=False, server_default=""))
    op.create_table(
        "data_objects",
        sa.Column("digest", sa.String(80), primary_key=True),
        sa.Column("dataset", sa.String(128), sa.ForeignKey("datasets.name"), primary_key=True),
    )


def downgrade() -> None:
    op.drop_table("data_objects")
    with op.batch_alter_table("data_versions") as batch:
        batch.drop_column("profile")

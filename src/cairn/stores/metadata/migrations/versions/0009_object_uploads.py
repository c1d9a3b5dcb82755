"""Object uploads: which account sent the bytes of which object.

Objects are shared by content across projects. Uploading an object's bytes proves the
uploader holds them, so they may record it in their own project even where another
project holds it too; naming a digest alone proves nothing. Whether a caller holds an
object is asked by digest, so run artifacts get an index on it, as data and model objects
have through their primary keys.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "object_uploads",
        sa.Column("digest", sa.String(80), primary_key=True),
        sa.Column("user_name", sa.String(255), primary_key=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_run_artifacts_digest", "run_artifacts", ["digest"])


def downgrade() -> None:
    op.drop_index("ix_run_artifacts_digest", table_name="run_artifacts")
    op.drop_table("object_uploads")

"""Data versioning: datasets, data versions, and the lineage graph's edges.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("project", sa.String(63), sa.ForeignKey("projects.name"), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "data_versions",
        sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("dataset", sa.String(128), sa.ForeignKey("datasets.name"), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("digest", sa.String(80), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("files", sa.BigInteger, nullable=False),
        sa.Column("bytes", sa.BigInteger, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("dataset", "version", name="uq_data_versions_dataset_version"),
    )
    op.create_index("ix_data_versions_digest", "data_versions", ["digest"])
    op.create_table(
        "lineage_edges",
        sa.Column("src_kind", sa.String(32), primary_key=True),
        sa.Column("src_id", sa.String(255), primary_key=True),
        sa.Column("relation", sa.String(32), primary_key=True),
        sa.Column("dst_kind", sa.String(32), primary_key=True),
        sa.Column("dst_id", sa.String(255), primary_key=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_lineage_edges_dst", "lineage_edges", ["dst_kind", "dst_id"])


def downgrade() -> None:
    op.drop_table("lineage_edges")
    op.drop_table("data_versions")
    op.drop_table("datasets")

"""Identity: projects, users and service accounts, API tokens, project roles; every
experiment belongs to a project (existing ones to ``default``).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    projects = op.create_table(
        "projects",
        sa.Column("name", sa.String(63), primary_key=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(projects, [{"name": "default", "created_at": int(time.time() * 1000)}])
    op.create_table(
        "users",
        sa.Column("name", sa.String(63), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("is_admin", sa.Boolean, nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("user_name", sa.String(63), sa.ForeignKey("users.name"), nullable=False),
        sa.Column("name", sa.String(250), nullable=False),
        sa.Column("secret_digest", sa.String(64), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=True),
        sa.Column("revoked_at", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_api_tokens_user", "api_tokens", ["user_name"])
    op.create_table(
        "project_members",
        sa.Column("project", sa.String(63), sa.ForeignKey("projects.name"), primary_key=True),
        sa.Column("user_name", sa.String(63), sa.ForeignKey("users.name"), primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
    )
    # No foreign key to projects here: SQLite cannot add one to an existing table in place.
    op.add_column(
        "experiments",
        sa.Column("project", sa.String(63), nullable=False, server_default="default"),
    )
    op.create_index("ix_experiments_project", "experiments", ["project"])


def downgrade() -> None:
    op.drop_index("ix_experiments_project", "experiments")
    with op.batch_alter_table("experiments") as batch:
        batch.drop_column("project")
    for table in ("project_members", "api_tokens", "users", "projects"):
        op.drop_table(table)

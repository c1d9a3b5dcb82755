"""Releases: environments, promotion requests, approvals, deployment history, webhooks.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_TABLES = ("webhook_deliveries", "webhooks", "deployments", "request_approvals",
           "promotion_requests", "environments")  # fmt: skip


def upgrade() -> None:
    op.create_table(
        "environments",
        sa.Column("name", sa.String(63), primary_key=True),
        sa.Column("policy_text", sa.Text, nullable=False),
        sa.Column("policy_json", sa.Text, nullable=False),
        sa.Column("policy_digest", sa.String(80), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_by", sa.String(255), nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "promotion_requests",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("model", sa.String(128), sa.ForeignKey("models.name"), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("digest", sa.String(80), nullable=False),
        sa.Column("environment", sa.String(63), sa.ForeignKey("environments.name"), nullable=False),
        sa.Column("project", sa.String(63), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("requester", sa.String(255), nullable=False),
        sa.Column("requesters", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("policy_digest", sa.String(80), nullable=False),
        sa.Column("gates", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.Column("decided_by", sa.String(255), nullable=True),
        sa.Column("decision", sa.Text, nullable=False),
    )
    op.create_index(
        "ix_promotion_requests_target", "promotion_requests", ["model", "environment", "state"]
    )
    op.create_table(
        "request_approvals",
        sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "request_id", sa.String(32), sa.ForeignKey("promotion_requests.id"), nullable=False
        ),
        sa.Column("by", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), nullable=True),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("package_digest", sa.String(80), nullable=False),
        sa.Column("policy_digest", sa.String(80), nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_request_approvals_request", "request_approvals", ["request_id"])
    op.create_table(
        "deployments",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("environment", sa.String(63), sa.ForeignKey("environments.name"), nullable=False),
        sa.Column("model", sa.String(128), sa.ForeignKey("models.name"), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("previous", sa.Integer, nullable=True),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("by", sa.String(255), nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("project", sa.String(63), nullable=False),
        sa.Column("request_id", sa.String(32), nullable=True),
    )
    op.create_index(
        "ix_deployments_environment_model", "deployments", ["environment", "model", "id"]
    )
    op.create_table(
        "webhooks",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("secret", sa.Text, nullable=False),
        sa.Column("environment", sa.String(63), nullable=True),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("webhook_id", sa.String(32), sa.ForeignKey("webhooks.id"), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("delivered_at", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_webhook_deliveries_state", "webhook_deliveries", ["state"])


def downgrade() -> None:
    for table in _TABLES:
        op.drop_table(table)

"""The installation: one id per database, named by every audit checkpoint.

Checkpoints of two installations (two databases) must never vouch for, or against, each
other's trail, even when they are exported to one place or signed with one key. Replicas
of one installation share its database, and so its id. The id is made here, once, under
the migration lock, so concurrent first opens agree on it; like the audit tables, the
table refuses changes.

Checkpoints signed before this revision name no installation: they are read only from
the database they were signed in, where whose they are is not in doubt.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import time
import uuid

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    installation = op.create_table(
        "installation",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(installation, [{"id": uuid.uuid4().hex, "created_at": time.time_ns() // 10**6}])
    op.add_column("audit_checkpoints", sa.Column("installation", sa.String(32), nullable=True))
    if op.get_bind().dialect.name == "postgresql":  # cairn_append_only() is 0003's
        op.execute(
            "CREATE TRIGGER installation_append_only BEFORE UPDATE OR DELETE ON installation "
            "FOR EACH ROW EXECUTE FUNCTION cairn_append_only()"
        )
        op.execute(
            "CREATE TRIGGER installation_no_truncate BEFORE TRUNCATE ON installation "
            "FOR EACH STATEMENT EXECUTE FUNCTION cairn_append_only()"
        )
        return
    for operation in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER installation_no_{operation.lower()} BEFORE {operation} ON "
            "installation BEGIN SELECT RAISE(ABORT, 'installation is append-only'); END"
        )


def downgrade() -> None:
    op.drop_column("audit_checkpoints", "installation")
    op.drop_table("installation")  # its triggers go with it

"""The sends ledger.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "messenger"


def upgrade() -> None:
    op.create_table(
        "sends",
        sa.Column("proposal_id", sa.Uuid(), primary_key=True),
        sa.Column("debtor_id", sa.String(128), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("provider_message_id", sa.String(64)),
        sa.Column("error_code", sa.String(64)),
        sa.Column("detail", sa.Text()),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("trace_id", sa.String(32)),
        sa.CheckConstraint(
            "status IN ('claimed', 'sent', 'failed', 'expired', 'unknown')",
            name="ck_sends_status",
        ),
        schema=SCHEMA,
    )
    op.create_index("ix_sends_debtor_id", "sends", ["debtor_id"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_index("ix_sends_debtor_id", table_name="sends", schema=SCHEMA)
    op.drop_table("sends", schema=SCHEMA)

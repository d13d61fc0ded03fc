"""Suppressions, receipts, inbound messages; the address of each send.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "messenger"


def upgrade() -> None:
    op.add_column("sends", sa.Column("address", sa.Text()), schema=SCHEMA)
    op.create_index("ix_sends_address", "sends", ["address"], schema=SCHEMA)
    op.create_index("ix_sends_provider_message_id", "sends", ["provider_message_id"], schema=SCHEMA)
    op.drop_constraint("ck_sends_status", "sends", schema=SCHEMA, type_="check")
    op.create_check_constraint(
        "ck_sends_status",
        "sends",
        "status IN ('claimed', 'sent', 'failed', 'expired', 'unknown', 'suppressed')",
        schema=SCHEMA,
    )
    op.create_table(
        "suppressions",
        sa.Column("scope", sa.Text(), primary_key=True),
        sa.Column("suppressed", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "receipts",
        sa.Column("receipt_id", sa.String(200), primary_key=True),
        sa.Column("proposal_id", sa.Uuid(), nullable=False),
        sa.Column("debtor_id", sa.String(128), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("provider_message_id", sa.String(64)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error_code", sa.String(64)),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("trace_id", sa.String(32)),
        schema=SCHEMA,
    )
    op.create_index("ix_receipts_debtor_id", "receipts", ["debtor_id"], schema=SCHEMA)
    op.create_table(
        "inbound_messages",
        sa.Column("message_sid", sa.String(64), primary_key=True),
        sa.Column("intent", sa.String(16), nullable=False),
        sa.Column("reply", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("inbound_messages", schema=SCHEMA)
    op.drop_index("ix_receipts_debtor_id", table_name="receipts", schema=SCHEMA)
    op.drop_table("receipts", schema=SCHEMA)
    op.drop_table("suppressions", schema=SCHEMA)
    op.drop_constraint("ck_sends_status", "sends", schema=SCHEMA, type_="check")
    op.create_check_constraint(
        "ck_sends_status",
        "sends",
        "status IN ('claimed', 'sent', 'failed', 'expired', 'unknown')",
        schema=SCHEMA,
    )
    op.drop_index("ix_sends_provider_message_id", table_name="sends", schema=SCHEMA)
    op.drop_index("ix_sends_address", table_name="sends", schema=SCHEMA)
    op.drop_column("sends", "address", schema=SCHEMA)

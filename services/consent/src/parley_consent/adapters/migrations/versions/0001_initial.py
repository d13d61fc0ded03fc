"""Decisions and consent changes.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "consent"


def upgrade() -> None:
    op.create_table(
        "decisions",
        sa.Column("proposal_id", sa.Uuid(), primary_key=True),
        sa.Column("event_id", sa.Uuid(), nullable=False, unique=True),
        sa.Column("debtor_id", sa.String(128), nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("reasons", postgresql.JSONB(), nullable=False),
        sa.Column("defer_until", sa.DateTime(timezone=True)),
        sa.Column("lawful_until", sa.DateTime(timezone=True)),
        sa.Column("rule_set_version", sa.Text(), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("trace_id", sa.String(32)),
        sa.Column(
            "decision",
            postgresql.JSONB(),
            nullable=False,
            comment="The ContactDecision event as published.",
        ),
        sa.Column(
            "recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_decisions_debtor_id_decided_at",
        "decisions",
        ["debtor_id", "decided_at"],
        schema=SCHEMA,
    )
    op.create_table(
        "consent_changes",
        sa.Column("event_id", sa.Uuid(), primary_key=True),
        sa.Column("debtor_id", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(16)),
        sa.Column("address", sa.Text(), comment="As received; personal data, never logged."),
        sa.Column("address_key", sa.Text(), comment="Normalised address used to match opt-outs."),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("details", postgresql.JSONB(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        schema=SCHEMA,
    )
    op.create_index("ix_consent_changes_debtor_id", "consent_changes", ["debtor_id"], schema=SCHEMA)
    op.create_index(
        "ix_consent_changes_address_key", "consent_changes", ["address_key"], schema=SCHEMA
    )


def downgrade() -> None:
    op.drop_table("consent_changes", schema=SCHEMA)
    op.drop_table("decisions", schema=SCHEMA)

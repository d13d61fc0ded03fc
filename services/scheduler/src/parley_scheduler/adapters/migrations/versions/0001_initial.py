"""Proposals outbox and recorded decisions.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "proposals",
        sa.Column("proposal_id", sa.Uuid(), primary_key=True),
        sa.Column("debtor_id", sa.String(128), nullable=False),
        sa.Column("campaign_id", sa.String(64), nullable=False),
        sa.Column("campaign_version", sa.Integer(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("event", postgresql.JSONB(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("published_at", sa.DateTime(timezone=True)),
        schema="scheduler",
    )
    op.create_index("ix_proposals_debtor_id", "proposals", ["debtor_id"], schema="scheduler")
    # Finding the outbox's unpublished rows stays cheap as the table grows.
    op.create_index(
        "ix_proposals_unpublished",
        "proposals",
        ["created_at"],
        schema="scheduler",
        postgresql_where=sa.text("published_at IS NULL"),
    )
    op.create_table(
        "decisions",
        sa.Column("proposal_id", sa.Uuid(), primary_key=True),
        sa.Column("debtor_id", sa.String(128), nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("rule_ids", postgresql.JSONB(), nullable=False),
        sa.Column("defer_until", sa.DateTime(timezone=True)),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        schema="scheduler",
    )


def downgrade() -> None:
    op.drop_table("decisions", schema="scheduler")
    op.drop_table("proposals", schema="scheduler")

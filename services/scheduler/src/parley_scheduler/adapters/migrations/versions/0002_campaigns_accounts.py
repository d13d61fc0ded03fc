"""Stored campaigns with versions and a change log, accounts, delivery outcomes, attempts.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SCHEMA = "scheduler"


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("campaign_id", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "campaign_versions",
        sa.Column("campaign_id", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer(), primary_key=True),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("definition", postgresql.JSONB(), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "campaign_changes",
        sa.Column("change_id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("campaign_id", sa.String(64), nullable=False, index=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("changes", postgresql.JSONB(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "accounts",
        sa.Column("debtor_id", sa.String(128), primary_key=True),
        sa.Column("data", postgresql.JSONB(), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("time_zone", sa.String(64)),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("jurisdiction", sa.String(16), nullable=False),
        sa.Column("days_past_due", sa.Integer()),
        sa.Column("balance", sa.Numeric()),
        sa.Column("flags", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("paid", sa.Boolean(), nullable=False),
        sa.Column("has_phone", sa.Boolean(), nullable=False),
        sa.Column("has_email", sa.Boolean(), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "deliveries",
        sa.Column("proposal_id", sa.Uuid(), primary_key=True),
        sa.Column("debtor_id", sa.String(128), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    op.add_column(
        "proposals",
        sa.Column("attempt", sa.Integer(), nullable=False, server_default="0"),
        schema=SCHEMA,
    )
    # "Was this step already proposed to this debtor?" is asked for every account on a tick.
    op.create_index(
        "ix_proposals_campaign_step_debtor",
        "proposals",
        ["campaign_id", "step", "debtor_id"],
        schema=SCHEMA,
    )
    op.add_column(
        "decisions",
        sa.Column("reproposed_at", sa.DateTime(timezone=True)),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_decisions_deferred_due",
        "decisions",
        ["defer_until"],
        schema=SCHEMA,
        postgresql_where=sa.text("verdict = 'deferred' AND reproposed_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_decisions_deferred_due", "decisions", schema=SCHEMA)
    op.drop_column("decisions", "reproposed_at", schema=SCHEMA)
    op.drop_index("ix_proposals_campaign_step_debtor", "proposals", schema=SCHEMA)
    op.drop_column("proposals", "attempt", schema=SCHEMA)
    for table in ("deliveries", "accounts", "campaign_changes", "campaign_versions", "campaigns"):
        op.drop_table(table, schema=SCHEMA)

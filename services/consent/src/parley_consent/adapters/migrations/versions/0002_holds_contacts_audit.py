"""Holds and preferences on consent changes, contacts counted for caps, evidence on
decisions, and both audit tables made append-only.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "consent"
_AUDIT_TABLES = ("decisions", "consent_changes")


def upgrade() -> None:
    op.add_column("consent_changes", sa.Column("hold_kind", sa.String(32)), schema=SCHEMA)
    op.add_column(
        "consent_changes", sa.Column("starts_at", sa.DateTime(timezone=True)), schema=SCHEMA
    )
    op.add_column(
        "consent_changes", sa.Column("ends_at", sa.DateTime(timezone=True)), schema=SCHEMA
    )
    op.add_column("consent_changes", sa.Column("preferences", postgresql.JSONB()), schema=SCHEMA)
    op.add_column(
        "decisions",
        sa.Column(
            "evidence",
            postgresql.JSONB(),
            nullable=False,
            server_default=sa.text("'{}'::jsonb"),
            comment="What the decision used: zones, counts, holds, exceptions.",
        ),
        schema=SCHEMA,
    )
    op.create_table(
        "contacts",
        sa.Column("proposal_id", sa.Uuid(), primary_key=True),
        sa.Column("debtor_id", sa.String(128), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column(
            "recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_contacts_debtor_id_sent_at", "contacts", ["debtor_id", "sent_at"], schema=SCHEMA
    )
    # The audit must not be rewritten: refuse updates and deletes at the database.
    op.execute(
        f"""
        CREATE FUNCTION {SCHEMA}.refuse_audit_change() RETURNS trigger AS $$
        BEGIN
            RAISE EXCEPTION 'the % audit table is append-only', TG_TABLE_NAME;
        END;
        $$ LANGUAGE plpgsql
        """
    )
    for table in _AUDIT_TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {SCHEMA}.{table} "
            f"FOR EACH ROW EXECUTE FUNCTION {SCHEMA}.refuse_audit_change()"
        )


def downgrade() -> None:
    for table in _AUDIT_TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {SCHEMA}.{table}")
    op.execute(f"DROP FUNCTION IF EXISTS {SCHEMA}.refuse_audit_change()")
    op.drop_table("contacts", schema=SCHEMA)
    op.drop_column("decisions", "evidence", schema=SCHEMA)
    for column in ("preferences", "ends_at", "starts_at", "hold_kind"):
        op.drop_column("consent_changes", column, schema=SCHEMA)

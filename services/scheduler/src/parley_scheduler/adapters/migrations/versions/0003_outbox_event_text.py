"""The outbox keeps each event as the exact JSON text that is published (json, not jsonb):
a republished proposal carries the same bytes, and storing a million of them skips the
binary conversion jsonb does on every insert.

Revision ID: 0003
Revises: 0002
"""

from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SCHEMA = "scheduler"


def upgrade() -> None:
    op.alter_column(
        "proposals",
        "event",
        type_=postgresql.JSON(),
        postgresql_using="event::json",
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.alter_column(
        "proposals",
        "event",
        type_=postgresql.JSONB(),
        postgresql_using="event::jsonb",
        schema=SCHEMA,
    )

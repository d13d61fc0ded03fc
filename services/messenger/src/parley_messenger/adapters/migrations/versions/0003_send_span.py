"""The span each send was made in, so later webhooks join the reminder's trace.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "messenger"


def upgrade() -> None:
    op.add_column("sends", sa.Column("span_id", sa.String(16)), schema=SCHEMA)


def downgrade() -> None:
    op.drop_column("sends", "span_id", schema=SCHEMA)

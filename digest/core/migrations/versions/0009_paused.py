"""subscribers.paused_at: when a subscriber last paused (the new status 'paused')

The status column is a VARCHAR without a CHECK constraint, so the new value
needs no schema change; existing rows keep their data and get NULL.

Revision ID: 0009_paused
Revises: 0008_source_text
Create Date: 2026-11-25 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_paused"
down_revision: str | None = "0008_source_text"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        batch.add_column(sa.Column("paused_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    # A paused subscriber would be an unknown status to the older code: resume it.
    op.execute("UPDATE subscribers SET status = 'active' WHERE status = 'paused'")
    with op.batch_alter_table("subscribers") as batch:
        batch.drop_column("paused_at")

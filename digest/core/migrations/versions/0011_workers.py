"""workers: the heartbeats of sending processes ("waiting for a worker" when none is alive)

A new table only; existing data is untouched.

Revision ID: 0011_workers
Revises: 0010_edition_render
Create Date: 2026-11-26 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_workers"
down_revision: str | None = "0010_edition_render"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "workers",
        sa.Column("id", sa.String(length=100), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("workers") as batch_op:
        batch_op.create_index("ix_workers_last_seen", ["last_seen"], unique=False)


def downgrade() -> None:
    op.drop_table("workers")

"""bounce_events: returned mail about a subscriber, with the delivery it came from

A new table only: existing data is untouched. One row per (source message,
subscriber), so reading the same message twice stores it once. Downgrade drops it.

Revision ID: 0019_bounce_events
Revises: 0018_edition_editor
Create Date: 2026-12-02 06:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019_bounce_events"
down_revision: str | None = "0018_edition_editor"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "bounce_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("delivery_id", sa.Integer(), sa.ForeignKey("deliveries.id"), nullable=True),
        sa.Column("subscriber_id", sa.Integer(), sa.ForeignKey("subscribers.id"), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=True),
        sa.Column("diagnostic", sa.Text(), nullable=False),
        sa.Column("verified", sa.Boolean(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source_key", sa.String(length=64), nullable=False),
        sa.UniqueConstraint("source_key", "subscriber_id"),
    )
    op.create_index("ix_bounce_events_delivery_id", "bounce_events", ["delivery_id"])
    op.create_index("ix_bounce_events_subscriber_id", "bounce_events", ["subscriber_id"])


def downgrade() -> None:
    op.drop_index("ix_bounce_events_subscriber_id", table_name="bounce_events")
    op.drop_index("ix_bounce_events_delivery_id", table_name="bounce_events")
    op.drop_table("bounce_events")

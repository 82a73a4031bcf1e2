"""subscribers: lifecycle timestamps, time zone, attributes, suppression list

Revision ID: 0004_subscribers
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_subscribers"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMPS = (
    "confirmed_at",
    "unsubscribed_at",
    "bounced_at",
    "complained_at",
    "last_confirmation_sent_at",
    "erased_at",
)


def upgrade() -> None:
    with op.batch_alter_table("subscribers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("timezone", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("attributes", sa.JSON(), nullable=False, server_default=sa.text("'{}'"))
        )
        for column in TIMESTAMPS:
            batch_op.add_column(sa.Column(column, sa.DateTime(timezone=True), nullable=True))

    # Existing rows: the only change they went through is the one into their status.
    subscribers = sa.table(
        "subscribers",
        sa.column("status", sa.String),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("status_changed_at", sa.DateTime(timezone=True)),
        sa.column("confirmed_at", sa.DateTime(timezone=True)),
        sa.column("unsubscribed_at", sa.DateTime(timezone=True)),
        sa.column("bounced_at", sa.DateTime(timezone=True)),
        sa.column("complained_at", sa.DateTime(timezone=True)),
    )
    op.execute(
        subscribers.update()
        .where(subscribers.c.status == "active")
        .values(confirmed_at=subscribers.c.created_at)
    )
    for status, column in (
        ("unsubscribed", "unsubscribed_at"),
        ("bounced", "bounced_at"),
        ("complained", "complained_at"),
    ):
        op.execute(
            subscribers.update()
            .where(subscribers.c.status == status)
            .values({column: subscribers.c.status_changed_at})
        )

    op.create_table(
        "suppressions",
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key_hash"),
    )


def downgrade() -> None:
    op.drop_table("suppressions")
    with op.batch_alter_table("subscribers", schema=None) as batch_op:
        for column in reversed(TIMESTAMPS):
            batch_op.drop_column(column)
        batch_op.drop_column("attributes")
        batch_op.drop_column("timezone")

"""subscribers.topics and subscribers.cadence: what each subscriber wants, and how often

``topics`` is a JSON list of story tags (empty: everything); ``cadence`` is
``daily`` or ``weekly``. Both get server defaults, so every existing
subscriber keeps receiving everything, daily. Downgrade drops both columns.

Revision ID: 0015_preferences
Revises: 0013_address_case
Create Date: 2026-12-02 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_preferences"
down_revision: str | None = "0013_address_case"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        batch.add_column(
            sa.Column("topics", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
        batch.add_column(
            sa.Column(
                "cadence", sa.String(length=10), nullable=False, server_default=sa.text("'daily'")
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        batch.drop_column("cadence")
        batch.drop_column("topics")

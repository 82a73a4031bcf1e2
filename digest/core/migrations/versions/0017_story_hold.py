"""stories.held_at: a story the operator holds back stays out of new editions

Nullable, no default: every existing story is not held, so the next edition
takes what it took before. Downgrade drops the column (held stories become
new again).

Revision ID: 0017_story_hold
Revises: 0016_variants
Create Date: 2026-12-02 06:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017_story_hold"
down_revision: str | None = "0016_variants"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("stories") as batch:
        batch.add_column(sa.Column("held_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("stories") as batch:
        batch.drop_column("held_at")

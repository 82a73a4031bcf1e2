"""stories.source: TEXT (a file path may pass 1,000 characters)

Revision ID: 0008_source_text
Revises: 0007_not_before
Create Date: 2026-11-24 00:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_source_text"
down_revision: str | None = "0007_not_before"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # SQLite does not enforce VARCHAR lengths; only PostgreSQL needs the change.
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("stories", "source", type_=sa.Text(), existing_nullable=False)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column(
            "stories",
            "source",
            type_=sa.String(length=1000),
            existing_nullable=False,
            postgresql_using="left(source, 1000)",
        )

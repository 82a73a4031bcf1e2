"""editions.subject and editions.intro: what the operator edits on a draft

``subject`` replaces the generated ``NAME #N: first headline`` when set;
``intro`` is Markdown shown above the first story. Both are NULL for every
existing edition, which renders as before. Downgrade drops both columns.

Revision ID: 0018_edition_editor
Revises: 0017_story_hold
Create Date: 2026-12-02 06:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018_edition_editor"
down_revision: str | None = "0017_story_hold"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("editions") as batch:
        batch.add_column(sa.Column("subject", sa.Text(), nullable=True))
        batch.add_column(sa.Column("intro", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("editions") as batch:
        batch.drop_column("intro")
        batch.drop_column("subject")

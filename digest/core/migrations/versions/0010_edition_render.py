"""editions: the render stored at start (subject, preheader, HTML, text, placeholders)
and whether the pre-send check was overridden with --force

Every new column is nullable or has a default, so existing rows keep their
data. Editions started before this revision get NULL render columns: they go
on rendering live from the current templates, as they did before, while
every edition started from now on is built from what was stored at its start.

Revision ID: 0010_edition_render
Revises: 0009_paused
Create Date: 2026-12-02 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_edition_render"
down_revision: str | None = "0009_paused"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RENDER_COLUMNS = (
    "rendered_subject",
    "rendered_preheader",
    "rendered_html",
    "rendered_text",
    "rendered_placeholders",
)


def upgrade() -> None:
    with op.batch_alter_table("editions") as batch:
        batch.add_column(sa.Column("rendered_subject", sa.Text(), nullable=True))
        batch.add_column(sa.Column("rendered_preheader", sa.Text(), nullable=True))
        batch.add_column(sa.Column("rendered_html", sa.Text(), nullable=True))
        batch.add_column(sa.Column("rendered_text", sa.Text(), nullable=True))
        batch.add_column(sa.Column("rendered_placeholders", sa.JSON(), nullable=True))
        batch.add_column(
            sa.Column("check_forced", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("check_problems", sa.JSON(), nullable=True))


def downgrade() -> None:
    # Older code renders every started edition live again; nothing else depended on these.
    with op.batch_alter_table("editions") as batch:
        batch.drop_column("check_problems")
        batch.drop_column("check_forced")
        for name in reversed(RENDER_COLUMNS):
            batch.drop_column(name)

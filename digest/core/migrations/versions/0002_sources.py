"""sources: richer stories (body, GUID, canonical URL, tags, image, priority), feeds

Revision ID: 0002_sources
Revises: 0001
Create Date: 2026-11-24 10:00:00

Existing stories keep every value; new NOT NULL columns get server defaults,
and ``canonical_url`` is backfilled from ``url``.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_sources"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN (no batch table rebuild): SQLite supports it with constant
    # defaults, and a rebuild would DROP stories, which edition_stories references.
    op.add_column("stories", sa.Column("body", sa.Text(), nullable=True))
    op.add_column("stories", sa.Column("canonical_url", sa.String(length=2000), nullable=True))
    op.add_column("stories", sa.Column("source_guid", sa.String(length=1000), nullable=True))
    op.add_column(
        "stories", sa.Column("tags", sa.JSON(), server_default=sa.text("'[]'"), nullable=False)
    )
    op.add_column("stories", sa.Column("image_url", sa.String(length=2000), nullable=True))
    op.add_column("stories", sa.Column("image_alt", sa.String(length=500), nullable=True))
    op.add_column(
        "stories", sa.Column("priority", sa.Integer(), server_default=sa.text("0"), nullable=False)
    )
    op.create_index("ix_stories_canonical_url", "stories", ["canonical_url"])
    op.create_index("ix_stories_source_guid", "stories", ["source_guid"])

    from digest.core.urls import canonical_url  # the same normalization ingest uses

    conn = op.get_bind()
    stories = sa.table(
        "stories", sa.column("id", sa.Integer), sa.column("url"), sa.column("canonical_url")
    )
    rows = conn.execute(sa.select(stories.c.id, stories.c.url).where(stories.c.url.is_not(None)))
    for story_id, url in rows.all():
        conn.execute(
            stories.update()
            .where(stories.c.id == story_id)
            .values(canonical_url=canonical_url(url))
        )

    op.create_table(
        "feeds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("backfill", sa.Integer(), nullable=False),
        sa.Column("etag", sa.String(length=500), nullable=True),
        sa.Column("last_modified", sa.String(length=100), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("primed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_fetched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("url"),
    )
    op.create_table(
        "feed_seen_items",
        sa.Column("feed_id", sa.Integer(), nullable=False),
        sa.Column("item_key", sa.String(length=64), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["feed_id"], ["feeds.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("feed_id", "item_key"),
    )


def downgrade() -> None:
    op.drop_table("feed_seen_items")
    op.drop_table("feeds")
    op.drop_index("ix_stories_source_guid", table_name="stories")
    op.drop_index("ix_stories_canonical_url", table_name="stories")
    for column in ("priority", "image_alt", "image_url", "tags", "source_guid", "canonical_url"):
        op.drop_column("stories", column)
    op.drop_column("stories", "body")

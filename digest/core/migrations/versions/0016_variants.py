"""edition variants: one stored render per story subset, and which stories each delivery carried

``edition_variants`` holds a story subset of an edition with its render (NULL
when the subset is the whole edition: the edition's own render then serves);
``variant_stories`` lists its stories in order; ``deliveries.variant_id`` names
the variant a row is built from. ``editions.skipped_nothing_new`` and
``skipped_not_due`` count the active subscribers a start gave no row.

Existing data: every edition that has deliveries gets one variant, the whole
edition (render NULL: its own), and its rows point at it, so the ledger says
for old deliveries too which stories they carried. Downgrade drops it all.

Revision ID: 0016_variants
Revises: 0015_preferences
Create Date: 2026-12-02 07:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_variants"
down_revision: str | None = "0015_preferences"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "edition_variants",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "edition_id",
            sa.Integer(),
            sa.ForeignKey("editions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("rendered_subject", sa.Text(), nullable=True),
        sa.Column("rendered_preheader", sa.Text(), nullable=True),
        sa.Column("rendered_html", sa.Text(), nullable=True),
        sa.Column("rendered_text", sa.Text(), nullable=True),
        sa.Column("rendered_placeholders", sa.JSON(), nullable=True),
    )
    op.create_index("ix_edition_variants_edition_id", "edition_variants", ["edition_id"])
    op.create_table(
        "variant_stories",
        sa.Column(
            "variant_id",
            sa.Integer(),
            sa.ForeignKey("edition_variants.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("position", sa.Integer(), primary_key=True),
        sa.Column("story_id", sa.Integer(), sa.ForeignKey("stories.id"), nullable=False),
    )
    op.create_index("ix_variant_stories_story_id", "variant_stories", ["story_id"])
    with op.batch_alter_table("editions") as batch:
        for name in ("skipped_nothing_new", "skipped_not_due"):
            batch.add_column(
                sa.Column(name, sa.Integer(), nullable=False, server_default=sa.text("0"))
            )
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("variant_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            "fk_deliveries_variant_id_edition_variants", "edition_variants", ["variant_id"], ["id"]
        )
        batch.create_index("ix_deliveries_variant_id", ["variant_id"])
    # Every started edition's deliveries carried the whole edition: one variant each.
    op.execute(
        "INSERT INTO edition_variants (edition_id) SELECT DISTINCT edition_id FROM deliveries"
    )
    op.execute(
        "INSERT INTO variant_stories (variant_id, position, story_id)"
        " SELECT v.id, es.position, es.story_id FROM edition_variants v"
        " JOIN edition_stories es ON es.edition_id = v.edition_id"
    )
    op.execute(
        "UPDATE deliveries SET variant_id = (SELECT v.id FROM edition_variants v"
        " WHERE v.edition_id = deliveries.edition_id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_index("ix_deliveries_variant_id")
        batch.drop_constraint("fk_deliveries_variant_id_edition_variants", type_="foreignkey")
        batch.drop_column("variant_id")
    with op.batch_alter_table("editions") as batch:
        batch.drop_column("skipped_not_due")
        batch.drop_column("skipped_nothing_new")
    op.drop_index("ix_variant_stories_story_id", "variant_stories")
    op.drop_table("variant_stories")
    op.drop_index("ix_edition_variants_edition_id", "edition_variants")
    op.drop_table("edition_variants")

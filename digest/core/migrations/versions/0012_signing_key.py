"""app_secrets and subscribers.token_version: one signing key for every process, revocable links

``app_secrets`` holds secrets the app generates itself (the token-signing key,
written by the first process that needs it: see ``digest.core.signing``).
``subscribers.token_version`` is part of every token; existing rows get 1, and
a version-1 token is spelt and signed exactly as tokens were before, so links
mailed before the upgrade keep working (under the same key).

Revision ID: 0012_signing_key
Revises: 0011_workers
Create Date: 2026-12-02 05:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_signing_key"
down_revision: str | None = "0011_workers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "app_secrets",
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    with op.batch_alter_table("subscribers") as batch:
        batch.add_column(
            sa.Column("token_version", sa.Integer(), nullable=False, server_default=sa.text("1"))
        )


def downgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        batch.drop_column("token_version")
    op.drop_table("app_secrets")

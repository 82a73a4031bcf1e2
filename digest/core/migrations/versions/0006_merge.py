"""merge the sources, ledger, subscribers and clock branches

Revision ID: 0006_merge
Revises: 0002_sources, 0003_ledger, 0004_subscribers, 0005_clock
Create Date: 2026-11-24 00:10:00
"""

from collections.abc import Sequence

revision: str = "0006_merge"
down_revision: str | Sequence[str] | None = (
    "0002_sources",
    "0003_ledger",
    "0004_subscribers",
    "0005_clock",
)
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass

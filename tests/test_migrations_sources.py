"""Migration 0002_sources: a database made by 0001, with data, keeps every row."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from sqlalchemy import text

from digest.core.db import alembic_config, make_engine
from digest.core.settings import normalize_database_url


def test_migration_sources_keeps_stories_and_editions_of_a_0001_database(
    database_url: str,
) -> None:
    engine = make_engine(normalize_database_url(database_url))
    try:
        cfg = alembic_config(engine)
        command.upgrade(cfg, "0001")
        now = datetime(2026, 11, 20, 8, 0, tzinfo=UTC).replace(tzinfo=None)
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO stories (id, headline, summary, bullets, url, source,"
                    " content_hash, published_at, ingested_at) VALUES (1, 'Old headline',"
                    " 'Old summary', '[\"a point\"]', 'HTTPS://Example.ORG/a/?utm_source=x',"
                    " 'seeds/old.txt', :hash, NULL, :now)"
                ),
                {"hash": "a" * 64, "now": now},
            )
            conn.execute(
                text("INSERT INTO editions (id, status, created_at) VALUES (1, 'finished', :now)"),
                {"now": now},
            )
            conn.execute(
                text("INSERT INTO edition_stories (edition_id, position, story_id) VALUES (1,0,1)")
            )
        command.upgrade(cfg, "0002_sources")
        with engine.connect() as conn:
            row = conn.execute(
                text(
                    "SELECT headline, summary, bullets, url, canonical_url, source, tags,"
                    " priority, body, source_guid, image_url FROM stories WHERE id = 1"
                )
            ).one()
            placed = conn.execute(text("SELECT story_id FROM edition_stories")).scalars().all()
            feeds = conn.execute(text("SELECT count(*) FROM feeds")).scalar_one()
    finally:
        engine.dispose()
    assert row.headline == "Old headline"
    assert row.summary == "Old summary"
    assert "a point" in str(row.bullets)
    assert row.url == "HTTPS://Example.ORG/a/?utm_source=x"
    assert row.canonical_url == "https://example.org/a"
    assert row.source == "seeds/old.txt"
    assert row.tags in ("[]", [])
    assert row.priority == 0
    assert (row.body, row.source_guid, row.image_url) == (None, None, None)
    assert placed == [1]
    assert feeds == 0

"""Upgrading a database that already holds data keeps it, on every backend."""

from __future__ import annotations

from alembic import command
from sqlalchemy import text

from digest.core.db import alembic_config, current_revision, head_revision, make_engine, upgrade


def test_migrations_upgrade_from_the_first_revision_keeps_linked_rows(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        command.upgrade(alembic_config(engine), "0001")
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO subscribers (id, email, email_key, name, status, source,"
                    " created_at, status_changed_at) VALUES (1, 'a@example.com',"
                    " 'a@example.com', 'A', 'active', 'cli', :t, :t)"
                ),
                {"t": "2026-11-01 07:00:00"},
            )
            conn.execute(
                text(
                    "INSERT INTO stories (id, headline, summary, bullets, source, content_hash,"
                    " ingested_at) VALUES (1, 'H', 'S', '[\"b\"]', 'f.txt', 'h1', :t)"
                ),
                {"t": "2026-11-01 07:00:00"},
            )
            conn.execute(
                text("INSERT INTO editions (id, status, created_at) VALUES (1, 'finished', :t)"),
                {"t": "2026-11-01 07:00:00"},
            )
            conn.execute(
                text("INSERT INTO edition_stories (edition_id, position, story_id) VALUES (1,0,1)")
            )
            conn.execute(
                text(
                    "INSERT INTO deliveries (id, edition_id, subscriber_id, state, message_id,"
                    " attempts, updated_at) VALUES (1, 1, 1, 'sent', '<m@x>', 1, :t)"
                ),
                {"t": "2026-11-01 07:00:00"},
            )
        upgrade(engine)
        assert current_revision(engine) == head_revision()
        with engine.connect() as conn:
            for table in ("subscribers", "stories", "editions", "edition_stories", "deliveries"):
                assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar() == 1, table
            row = conn.execute(
                text(
                    "SELECT s.email, d.state FROM deliveries d JOIN subscribers s"
                    " ON s.id = d.subscriber_id"
                )
            ).one()
            assert tuple(row) == ("a@example.com", "sent")
    finally:
        engine.dispose()


def test_migrations_upgrade_twice_changes_nothing(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        first = upgrade(engine)
        second = upgrade(engine)
        assert first[0] is None and second[0] == second[1] == head_revision()
    finally:
        engine.dispose()

"""Migration 0019_bounce_events: a database at 0016 keeps its rows and gains an empty
table, which refuses a second event of one message about one subscriber; downgrade
drops it again."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from digest.core.db import alembic_config, current_revision, head_revision, make_engine, upgrade
from digest.core.settings import normalize_database_url

EVENT = (
    "INSERT INTO bounce_events (subscriber_id, kind, diagnostic, verified, received_at,"
    " source_key) VALUES (1, 'hard', '', true, :t, :key)"
)


def test_migration_bounce_events_adds_a_table_keeping_subscribers_and_downgrades(
    database_url: str,
) -> None:
    engine = make_engine(normalize_database_url(database_url))
    try:
        config = alembic_config(engine)
        command.upgrade(config, "0018_edition_editor")
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO subscribers (email, email_key, name, status, source, attributes,"
                    " created_at, status_changed_at)"
                    " VALUES ('a@example.net', 'a@example.net', '', 'active', 'cli', '{}', :t, :t)"
                ),
                {"t": "2026-11-01 07:00:00"},
            )
        assert "bounce_events" not in inspect(engine).get_table_names()
        upgrade(engine)
        assert current_revision(engine) == head_revision()
        with engine.begin() as conn:
            assert conn.execute(text("SELECT email FROM subscribers")).scalars().all() == [
                "a@example.net"
            ]
            conn.execute(text(EVENT), {"t": "2026-11-02 07:00:00", "key": "k" * 64})
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(text(EVENT), {"t": "2026-11-02 08:00:00", "key": "k" * 64})
        columns = {c["name"] for c in inspect(engine).get_columns("bounce_events")}
        assert columns == {
            "id",
            "delivery_id",
            "subscriber_id",
            "kind",
            "status",
            "diagnostic",
            "verified",
            "received_at",
            "source_key",
        }
        command.downgrade(config, "0018_edition_editor")
        assert "bounce_events" not in inspect(engine).get_table_names()
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM subscribers")).scalar() == 1
    finally:
        engine.dispose()

"""Migration 0014_web_sessions: a database at 0011 keeps its rows and gains an empty table."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect, text

from digest.core.db import alembic_config, current_revision, head_revision, make_engine, upgrade
from digest.core.settings import normalize_database_url


def test_migration_web_sessions_adds_an_empty_table_and_keeps_existing_rows(
    database_url: str,
) -> None:
    engine = make_engine(normalize_database_url(database_url))
    try:
        command.upgrade(alembic_config(engine), "0011_workers")
        with engine.begin() as conn:
            for kind in ("poll", "queue"):
                conn.execute(
                    text(
                        "INSERT INTO workers (id, host, pid, kind, started_at, last_seen)"
                        " VALUES (:kind, 'box', 7, :kind, :t, :t)"
                    ),
                    {"kind": kind, "t": "2026-11-01 07:00:00"},
                )
        assert "web_sessions" not in inspect(engine).get_table_names()
        upgrade(engine)
        assert current_revision(engine) == head_revision()
        with engine.connect() as conn:
            kinds = conn.execute(text("SELECT kind FROM workers ORDER BY id")).scalars().all()
            assert kinds == ["poll", "queue"]
            assert conn.execute(text("SELECT count(*) FROM web_sessions")).scalar() == 0
        columns = {c["name"] for c in inspect(engine).get_columns("web_sessions")}
        assert columns == {"id", "created_at", "expires_at"}
    finally:
        engine.dispose()

"""Migration 0018_edition_editor: existing editions keep their subject and get no intro."""

from __future__ import annotations

from alembic import command
from conftest import Cli
from sqlalchemy import inspect, text

from digest.core.db import alembic_config, make_engine

T0 = "2026-11-01 07:00:00"


def test_migration_edition_editor_keeps_editions_and_adds_empty_subject_and_intro(
    cli: Cli, database_url: str
) -> None:
    engine = make_engine(database_url)
    try:
        command.upgrade(alembic_config(engine), "0017_story_hold")
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO editions (id, status, created_at, rendered_subject)"
                    " VALUES (1, 'finished', :t, 'The Digest #1: Old news')"
                ),
                {"t": T0},
            )
        command.upgrade(alembic_config(engine), "0018_edition_editor")
        with engine.connect() as conn:
            row = conn.execute(
                text("SELECT status, rendered_subject, subject, intro FROM editions")
            ).one()
        assert tuple(row) == ("finished", "The Digest #1: Old news", None, None)
        command.downgrade(alembic_config(engine), "0017_story_hold")
        columns = {c["name"] for c in inspect(engine).get_columns("editions")}
        assert "subject" not in columns and "intro" not in columns
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM editions")).scalar() == 1
    finally:
        engine.dispose()

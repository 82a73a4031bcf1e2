"""Migration 0017_story_hold: existing stories are not held, the next edition takes what it
took before; downgrade drops the column and keeps the stories."""

from __future__ import annotations

import json

from alembic import command
from conftest import Cli
from sqlalchemy import inspect, text

from digest.core.db import alembic_config, make_engine, upgrade

T0 = "2026-11-01 07:00:00"


def make_0015_database(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        command.upgrade(alembic_config(engine), "0016_variants")
        with engine.begin() as conn:
            for i, headline in enumerate(("Placed", "Waiting one", "Waiting two"), start=1):
                conn.execute(
                    text(
                        "INSERT INTO stories (id, headline, summary, bullets, source, tags,"
                        " priority, content_hash, ingested_at) VALUES (:i, :h, 'S', '[]', 'f',"
                        " '[]', 0, :c, :t)"
                    ),
                    {"i": i, "h": headline, "c": f"hash{i}", "t": T0},
                )
            conn.execute(
                text("INSERT INTO editions (id, status, created_at) VALUES (1, 'finished', :t)"),
                {"t": T0},
            )
            conn.execute(
                text(
                    "INSERT INTO edition_stories (edition_id, position, story_id) VALUES (1, 0, 1)"
                )
            )
    finally:
        engine.dispose()


def test_migration_story_hold_keeps_every_story_new_or_used_as_before(
    cli: Cli, database_url: str
) -> None:
    make_0015_database(database_url)
    cli("init")
    new = json.loads(cli("stories", "list", "--new", "--json").output)
    assert sorted(s["headline"] for s in new) == ["Waiting one", "Waiting two"]
    assert len(json.loads(cli("stories", "list", "--json").output)) == 3


def test_migration_story_hold_downgrade_drops_the_column_and_keeps_the_stories(
    cli: Cli, database_url: str
) -> None:
    make_0015_database(database_url)
    engine = make_engine(database_url)
    try:
        upgrade(engine)
        assert "held_at" in {c["name"] for c in inspect(engine).get_columns("stories")}
        with engine.begin() as conn:
            conn.execute(text("UPDATE stories SET held_at = :t WHERE id = 2"), {"t": T0})
        command.downgrade(alembic_config(engine), "0016_variants")
        assert "held_at" not in {c["name"] for c in inspect(engine).get_columns("stories")}
        with engine.connect() as conn:
            ids = conn.execute(text("SELECT id FROM stories ORDER BY id")).scalars()
            assert list(ids) == [1, 2, 3]
    finally:
        engine.dispose()

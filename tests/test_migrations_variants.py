"""Migration 0016_variants: deliveries made before it point at a variant holding their
whole edition, so the ledger says for old rows too which stories they carried."""

from __future__ import annotations

from typing import Any

from alembic import command
from conftest import Cli
from sqlalchemy import inspect, text

from digest.core.db import alembic_config, make_engine, upgrade

T0 = "2026-11-01 07:00:00"
# edition -> its stories; edition 3 is a draft (no deliveries: no variant).
EDITIONS = {1: [11, 12], 2: [21, 22, 23], 3: [31]}
DELIVERIES = [(1, 1), (1, 2), (2, 1), (2, 2)]  # (edition, subscriber)


def make_0015_database(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        command.upgrade(alembic_config(engine), "0015_preferences")
        with engine.begin() as conn:
            for sid in (1, 2):
                conn.execute(
                    text(
                        "INSERT INTO subscribers (id, email, email_key, name, status, source,"
                        " attributes, created_at, status_changed_at) VALUES (:id, :e, :e, '',"
                        " 'active', 'cli', '{}', :t, :t)"
                    ),
                    {"id": sid, "e": f"reader{sid}@example.com", "t": T0},
                )
            for edition, stories in EDITIONS.items():
                status = "draft" if edition == 3 else "finished"
                conn.execute(
                    text("INSERT INTO editions (id, status, created_at) VALUES (:e, :s, :t)"),
                    {"e": edition, "s": status, "t": T0},
                )
                for position, story in enumerate(stories):
                    conn.execute(
                        text(
                            "INSERT INTO stories (id, headline, summary, bullets, source, tags,"
                            " priority, content_hash, ingested_at) VALUES (:id, :h, 's', '[]',"
                            " 'test', '[]', 0, :h, :t)"
                        ),
                        {"id": story, "h": f"story {story}", "t": T0},
                    )
                    conn.execute(
                        text(
                            "INSERT INTO edition_stories (edition_id, position, story_id)"
                            " VALUES (:e, :p, :s)"
                        ),
                        {"e": edition, "p": position, "s": story},
                    )
            for n, (edition, sid) in enumerate(DELIVERIES, start=1):
                conn.execute(
                    text(
                        "INSERT INTO deliveries (id, edition_id, subscriber_id, state, message_id,"
                        " attempts, updated_at) VALUES (:id, :e, :s, 'sent', :m, 1, :t)"
                    ),
                    {"id": n, "e": edition, "s": sid, "m": f"<{edition}.{sid}@x>", "t": T0},
                )
    finally:
        engine.dispose()


def rows(database_url: str, sql: str) -> list[Any]:
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql))]
    finally:
        engine.dispose()


def test_migration_variants_old_deliveries_carry_their_whole_edition(
    cli: Cli, database_url: str
) -> None:
    make_0015_database(database_url)
    engine = make_engine(database_url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    carried = rows(
        database_url,
        "SELECT d.id, d.edition_id, vs.story_id FROM deliveries d"
        " JOIN edition_variants v ON v.id = d.variant_id"
        " JOIN variant_stories vs ON vs.variant_id = v.id"
        " WHERE v.edition_id = d.edition_id ORDER BY d.id, vs.position",
    )
    expected = [
        (n, edition, story)
        for n, (edition, _) in enumerate(DELIVERIES, start=1)
        for story in EDITIONS[edition]
    ]
    assert carried == expected
    assert rows(database_url, "SELECT edition_id FROM edition_variants ORDER BY edition_id") == [
        (1,),
        (2,),
    ]
    assert rows(
        database_url, "SELECT COUNT(*) FROM edition_variants WHERE rendered_html IS NOT NULL"
    ) == [(0,)]  # the whole edition: its own render serves
    assert (
        rows(database_url, "SELECT skipped_nothing_new, skipped_not_due FROM editions ORDER BY id")
        == [(0, 0)] * 3
    )
    assert len(rows(database_url, "SELECT id FROM deliveries")) == len(DELIVERIES)


def test_migration_variants_downgrade_keeps_the_ledger(cli: Cli, database_url: str) -> None:
    make_0015_database(database_url)
    engine = make_engine(database_url)
    try:
        upgrade(engine)
        command.downgrade(alembic_config(engine), "0015_preferences")
    finally:
        engine.dispose()
    assert rows(database_url, "SELECT edition_id, subscriber_id FROM deliveries ORDER BY id") == [
        tuple(d) for d in DELIVERIES
    ]
    engine = make_engine(database_url)
    try:
        schema = inspect(engine)
        assert "variant_id" not in {c["name"] for c in schema.get_columns("deliveries")}
        assert not {"edition_variants", "variant_stories"} & set(schema.get_table_names())
    finally:
        engine.dispose()

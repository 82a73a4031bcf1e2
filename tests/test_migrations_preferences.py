"""Migration 0015_preferences: existing subscribers get every topic, daily; nothing else moves."""

from __future__ import annotations

import json

from alembic import command
from conftest import Cli
from sqlalchemy import inspect, text

from digest.core.db import alembic_config, make_engine, upgrade

T0 = "2026-11-01 07:00:00"
PEOPLE = [
    ("ada@example.com", "active", '{"plan": "pro"}'),
    ("bob@example.com", "paused", "{}"),
    ("cy@example.com", "unsubscribed", "{}"),
]


def make_0013_database(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        command.upgrade(alembic_config(engine), "0013_address_case")
        with engine.begin() as conn:
            # No explicit ids: PostgreSQL's sequence must stay ahead for the rows added later.
            for email, status, attributes in PEOPLE:
                conn.execute(
                    text(
                        "INSERT INTO subscribers (email, email_key, name, status, source,"
                        " attributes, created_at, status_changed_at) VALUES (:e, :e, 'N',"
                        " :status, 'cli', :a, :t, :t)"
                    ),
                    {"e": email, "status": status, "a": attributes, "t": T0},
                )
            ada = conn.execute(text("SELECT min(id) FROM subscribers")).scalar()
            conn.execute(
                text("INSERT INTO editions (id, status, created_at) VALUES (1, 'finished', :t)"),
                {"t": T0},
            )
            conn.execute(
                text(
                    "INSERT INTO deliveries (id, edition_id, subscriber_id, state, message_id,"
                    " attempts, updated_at) VALUES (1, 1, :s, 'sent', '<m@x>', 1, :t)"
                ),
                {"s": ada, "t": T0},
            )
    finally:
        engine.dispose()


def test_migration_preferences_gives_existing_subscribers_everything_daily(
    cli: Cli, database_url: str
) -> None:
    make_0013_database(database_url)
    cli("init")
    listed = json.loads(cli("subscribers", "list", "--json").output)
    assert [(r["email"], r["status"], r["topics"], r["cadence"]) for r in listed] == [
        ("ada@example.com", "active", [], "daily"),
        ("bob@example.com", "paused", [], "daily"),
        ("cy@example.com", "unsubscribed", [], "daily"),
    ]
    exported = json.loads(cli("subscribers", "export", "--format", "json").output)
    assert exported[0]["attributes"] == {"plan": "pro"}
    # The new columns work as any other after the upgrade.
    cli("subscribers", "set", "ada@example.com", "--topics", "science", "--cadence", "weekly")
    cli("subscribers", "add", "dee@example.com")
    listed = json.loads(cli("subscribers", "list", "--json").output)
    assert [(r["topics"], r["cadence"]) for r in listed][::3] == [
        (["science"], "weekly"),
        ([], "daily"),
    ]
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM deliveries")).scalar() == 1
    finally:
        engine.dispose()


def test_migration_preferences_downgrade_drops_the_columns_and_keeps_the_rows(
    cli: Cli, database_url: str
) -> None:
    make_0013_database(database_url)
    engine = make_engine(database_url)
    try:
        upgrade(engine)
        command.downgrade(alembic_config(engine), "0013_address_case")
        columns = {c["name"] for c in inspect(engine).get_columns("subscribers")}
        with engine.connect() as conn:
            emails = conn.execute(text("SELECT email FROM subscribers ORDER BY id")).scalars()
            assert list(emails) == [p[0] for p in PEOPLE]
        assert "topics" not in columns and "cadence" not in columns
        upgrade(engine)
        columns = {c["name"] for c in inspect(engine).get_columns("subscribers")}
        assert {"topics", "cadence"} <= columns
    finally:
        engine.dispose()

"""Migration 0013_address_case: subscribers that were one mailbox in two cases become one.

A database made at 0011 with such duplicates (and the double mailing they
caused) is upgraded on every backend: one live subscriber per mailbox, the
most restrictive status kept, every ledger row kept, and the links of the
merged rows' old mails acting for the subscriber they were merged into.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from alembic import command
from conftest import Cli
from sqlalchemy import text
from subscriber_web import ONE_CLICK, web_app

from digest.core.db import alembic_config, make_engine, upgrade

T0 = "2026-11-01 07:00:00"

# (id, email, status, created_at, name, attributes); keys are made as 0011 made them.
PEOPLE: list[tuple[int, str, str, str, str, str]] = [
    (1, "ada@example.com", "active", "2026-10-01 07:00:00", "", '{"plan": "free"}'),
    (2, "ADA@EXAMPLE.COM", "unsubscribed", "2026-10-02 07:00:00", "Ada", '{"plan": "pro"}'),
    (3, "Ada@Example.com", "pending", "2026-10-03 07:00:00", "A. L.", '{"city": "London"}'),
    (4, "Bob@Example.org", "active", "2026-10-04 07:00:00", "Bob", "{}"),
    (5, "GRACE@example.net", "paused", "2026-10-06 07:00:00", "", "{}"),
    (6, "grace@example.net", "active", "2026-10-05 07:00:00", "Grace", "{}"),
    (7, "zoe@example.com", "complained", "2026-10-07 07:00:00", "", "{}"),
    (8, "ZOE@example.com", "bounced", "2026-10-08 07:00:00", "", "{}"),
]
# (edition, subscriber): edition 1 went to both spellings of Ada (the double copy).
DELIVERIES = [(1, 1), (1, 2), (1, 4), (2, 2), (2, 4), (2, 5), (2, 6), (1, 8)]


def key_at_0011(email: str) -> str:
    local, _, domain = email.rpartition("@")
    return f"{local}@{domain.lower()}"


def make_0011_database(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        command.upgrade(alembic_config(engine), "0011_workers")
        with engine.begin() as conn:
            for sid, email, status, created, name, attributes in PEOPLE:
                stamp = {"unsubscribed": "unsubscribed_at", "bounced": "bounced_at"}.get(status)
                conn.execute(
                    text(
                        "INSERT INTO subscribers (id, email, email_key, name, status, source,"
                        " attributes, created_at, status_changed_at, confirmed_at"
                        f"{', ' + stamp if stamp else ''}) VALUES (:id, :email, :key, :name,"
                        " :status, 'cli', :attributes, :created, :created, :created"
                        f"{', :created' if stamp else ''})"
                    ),
                    {
                        "id": sid,
                        "email": email,
                        "key": key_at_0011(email),
                        "name": name,
                        "status": status,
                        "attributes": attributes,
                        "created": created,
                    },
                )
            for edition in (1, 2):
                conn.execute(
                    text(
                        "INSERT INTO editions (id, status, created_at) VALUES (:e, 'finished', :t)"
                    ),
                    {"e": edition, "t": T0},
                )
            for n, (edition, sid) in enumerate(DELIVERIES, start=1):
                conn.execute(
                    text(
                        "INSERT INTO deliveries (id, edition_id, subscriber_id, state, message_id,"
                        " attempts, updated_at) VALUES (:id, :e, :s, 'sent', :m, 1, :t)"
                    ),
                    {"id": n, "e": edition, "s": sid, "m": f"<{edition}.{sid}@x>", "t": T0},
                )
        upgrade(engine)
    finally:
        engine.dispose()


def rows(database_url: str, sql: str) -> list[Any]:
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql))]
    finally:
        engine.dispose()


def test_migration_address_case_merges_duplicates_keeping_status_and_history(
    cli: Cli, database_url: str
) -> None:
    make_0011_database(database_url)
    live = rows(
        database_url,
        "SELECT id, email, email_key, status, name FROM subscribers"
        " WHERE erased_at IS NULL ORDER BY id",
    )
    assert live == [
        (1, "ada@example.com", "ada@example.com", "unsubscribed", "Ada"),
        (4, "Bob@Example.org", "bob@example.org", "active", "Bob"),
        (6, "grace@example.net", "grace@example.net", "paused", "Grace"),
        (7, "zoe@example.com", "zoe@example.com", "complained", ""),
    ]
    merged = rows(
        database_url,
        "SELECT id, email, status, merged_into_id FROM subscribers"
        " WHERE erased_at IS NOT NULL ORDER BY id",
    )
    assert merged == [
        (2, "erased-2@erased.invalid", "unsubscribed", 1),
        (3, "erased-3@erased.invalid", "unsubscribed", 1),
        (5, "erased-5@erased.invalid", "unsubscribed", 6),
        (8, "erased-8@erased.invalid", "unsubscribed", 7),
    ]
    # Every ledger row stays; each moved to the kept subscriber unless that one already
    # had a row for the edition (Ada's second copy of edition 1 stays with the merged row).
    ledger = rows(database_url, "SELECT edition_id, subscriber_id, message_id FROM deliveries")
    assert sorted(ledger) == sorted(
        [
            (1, 1, "<1.1@x>"),
            (1, 2, "<1.2@x>"),
            (1, 4, "<1.4@x>"),
            (2, 1, "<2.2@x>"),
            (2, 4, "<2.4@x>"),
            (2, 5, "<2.5@x>"),
            (2, 6, "<2.6@x>"),
            (1, 7, "<1.8@x>"),
        ]
    )
    [(attributes,)] = rows(database_url, "SELECT attributes FROM subscribers WHERE id = 1")
    loaded = json.loads(attributes) if isinstance(attributes, str) else attributes
    assert loaded == {"plan": "free", "city": "London"}  # the oldest row's values win

    # What an operator and a subscriber notice.
    cli("init")
    again = cli("subscribers", "add", "ADA@example.com", ok=False)
    assert "already a subscriber (status unsubscribed)" in again.output
    listed = json.loads(cli("subscribers", "list", "--json").output)
    assert [s["email"] for s in listed] == [e for _, e, *_ in live]
    with web_app(cli) as web:
        # An old mail to GRACE@ (row 5, merged into 6) still unsubscribes Grace.
        left = web.client.post(
            f"/unsubscribe/{web.token('unsubscribe', 5)}",
            content="List-Unsubscribe=One-Click",
            headers=ONE_CLICK,
        )
    assert left.status_code == 200
    [(status,)] = rows(database_url, "SELECT status FROM subscribers WHERE id = 6")
    assert status == "unsubscribed"


def test_migration_address_case_keeps_erasures_made_before_it(cli: Cli, database_url: str) -> None:
    """An erasure hashed the key with the local part as typed; after the upgrade that
    spelling is still refused, in the import and in `subscribers add`."""
    engine = make_engine(database_url)
    try:
        command.upgrade(alembic_config(engine), "0011_workers")
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO suppressions (key_hash, reason, created_at)"
                    " VALUES (:h, 'erased', :t)"
                ),
                {"h": hashlib.sha256(b"Grace.Hopper@example.org").hexdigest(), "t": T0},
            )
        upgrade(engine)
    finally:
        engine.dispose()
    added = cli("subscribers", "add", "Grace.Hopper@EXAMPLE.org", ok=False)
    assert added.exit_code == 1 and "was erased and is suppressed" in added.output
    csv_file = cli.cwd / "people.csv"
    csv_file.write_text("email\nGrace.Hopper@example.org\nada@example.com\n", encoding="utf-8")
    imported = cli("subscribers", "import", str(csv_file)).output
    assert "suppressed: Grace.Hopper@example.org (erased)" in imported
    assert [s["email"] for s in json.loads(cli("subscribers", "list", "--json").output)] == [
        "ada@example.com"
    ]

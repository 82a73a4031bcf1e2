"""Upgrading to 0012_signing_key keeps subscribers and deliveries, and an older install's
var/secret_key becomes the database's key: links mailed before the upgrade keep working."""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path

from alembic import command
from conftest import Cli
from fastapi.testclient import TestClient
from sqlalchemy import text
from subscriber_web import ONE_CLICK

from digest.core.db import alembic_config, make_engine, session_factory
from digest.core.settings import load_settings
from digest.web.app import create_app

LEGACY_KEY = "key-an-older-install-generated-into-var-secret_key"


def token_as_mailed_before_the_upgrade(key: str, purpose: str, subscriber_id: int) -> str:
    """A token exactly as the code before token versions made it."""
    mac = hmac.new(key.encode(), f"{purpose}:{subscriber_id}".encode(), hashlib.sha256)
    return f"{subscriber_id}." + base64.urlsafe_b64encode(mac.digest()[:18]).decode().rstrip("=")


def seed_0011(database_url: str) -> None:
    """A database at 0011 with two subscribers, an edition and a delivery."""
    engine = make_engine(database_url)
    try:
        command.upgrade(alembic_config(engine), "0011_workers")
        with engine.begin() as conn:
            for n, email in ((1, "ada@example.com"), (2, "bob@example.com")):
                conn.execute(
                    text(
                        "INSERT INTO subscribers (id, email, email_key, name, status, source,"
                        " attributes, created_at, status_changed_at) VALUES (:id, :e, :e, 'N',"
                        " 'active', 'cli', '{}', :t, :t)"
                    ),
                    {"id": n, "e": email, "t": "2026-11-01 07:00:00"},
                )
            conn.execute(
                text("INSERT INTO editions (id, status, created_at) VALUES (1, 'finished', :t)"),
                {"t": "2026-11-01 07:00:00"},
            )
            conn.execute(
                text(
                    "INSERT INTO deliveries (id, edition_id, subscriber_id, state, message_id,"
                    " attempts, updated_at) VALUES (1, 1, 1, 'sent', '<m@x>', 1, :t)"
                ),
                {"t": "2026-11-01 07:00:00"},
            )
    finally:
        engine.dispose()


def test_migration_signing_key_adopts_var_secret_key_and_keeps_the_data(
    cli: Cli, tmp_path: Path
) -> None:
    database_url = cli.env["DIGEST_DATABASE_URL"]
    seed_0011(database_url)
    old_var = tmp_path / "old-var"
    old_var.mkdir()
    (old_var / "secret_key").write_text(LEGACY_KEY + "\n")
    del cli.env["DIGEST_SECRET_KEY"]
    cli.env["DIGEST_VAR_DIR"] = str(old_var)
    out = cli("init").output
    assert "upgraded from 0011_workers to revision " in out
    assert "signing key: var/secret_key stored in the database" in out
    assert LEGACY_KEY not in out

    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT value FROM app_secrets")).scalar_one() == LEGACY_KEY
            people = conn.execute(
                text("SELECT id, email, status, token_version FROM subscribers ORDER BY id")
            ).all()
            assert [tuple(p) for p in people] == [
                (1, "ada@example.com", "active", 1),
                (2, "bob@example.com", "active", 1),
            ]
            delivery = conn.execute(text("SELECT subscriber_id, state FROM deliveries")).one()
            assert tuple(delivery) == (1, "sent")
        # A web process whose var/ holds no key at all: the adopted key comes from the database.
        settings = load_settings(database_url=database_url, var_dir=tmp_path / "new-var")
        old_link = token_as_mailed_before_the_upgrade(LEGACY_KEY, "unsubscribe", 1)
        with TestClient(create_app(settings, session_factory(engine)), "http://127.0.0.1") as web:
            answer = web.post(f"/unsubscribe/{old_link}", headers=ONE_CLICK)
            assert answer.status_code == 200, answer.text
            prefs = token_as_mailed_before_the_upgrade(LEGACY_KEY, "preferences", 2)
            assert web.get(f"/preferences/{prefs}").status_code == 200
        with engine.connect() as conn:
            statuses = conn.execute(text("SELECT status FROM subscribers ORDER BY id")).scalars()
            assert list(statuses) == ["unsubscribed", "active"]
    finally:
        engine.dispose()


def test_migration_signing_key_downgrade_drops_only_what_it_added(database_url: str) -> None:
    seed_0011(database_url)
    engine = make_engine(database_url)
    try:
        command.upgrade(alembic_config(engine), "0012_signing_key")
        command.downgrade(alembic_config(engine), "0011_workers")
        with engine.connect() as conn:
            count = conn.execute(text("SELECT count(*) FROM subscribers")).scalar_one()
            assert count == 2
            names = conn.execute(text("SELECT email FROM subscribers ORDER BY id")).scalars()
            assert list(names) == ["ada@example.com", "bob@example.com"]
        command.upgrade(alembic_config(engine), "0012_signing_key")
    finally:
        engine.dispose()

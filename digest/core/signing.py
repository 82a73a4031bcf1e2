"""The token-signing key kept in the database, shared by every process that uses it.

Without ``DIGEST_SECRET_KEY`` every process (web, clock, workers, the CLI) must
sign and check tokens with the same key, wherever its ``var/`` is: the key is a
row of ``app_secrets``. The first process that finds none writes one with
insert-if-absent and every process then reads the row back, so two processes
racing to create it end up with the same key. A ``var/secret_key`` left by an
older install (where each process generated its own) becomes that row rather
than a new random key, so the links already mailed keep verifying.
"""

from __future__ import annotations

import secrets
from enum import StrEnum
from pathlib import Path

from sqlalchemy import Engine, String, Text, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, mapped_column

from digest.core.db import Base
from digest.core.errors import ConfigError, DigestError

SIGNING_KEY = "signing_key"
LEGACY_KEY_FILE = "secret_key"  # var/secret_key: where installs before the database key kept it


class AppSecret(Base):
    """A secret the app generated for itself; never printed."""

    __tablename__ = "app_secrets"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class KeyOrigin(StrEnum):
    """Where the key a process read came from."""

    STORED = "stored"  # the database already held it
    GENERATED = "generated"  # this process generated it
    ADOPTED = "adopted"  # this process took it from var/secret_key


def legacy_key(var_dir: Path) -> str | None:
    """The key an older install generated into ``var/secret_key``, if there is one."""
    path = var_dir / LEGACY_KEY_FILE
    try:
        value = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        # Never replace a key that exists but cannot be read: the links it signed would die.
        why = exc.strerror if isinstance(exc, OSError) else "not a text file"
        raise ConfigError("DIGEST_VAR_DIR", f"cannot read the signing key {path}: {why}") from None
    return value or None


def database_key(engine: Engine, var_dir: Path) -> tuple[bytes, KeyOrigin]:
    """The signing key stored in the database, written first (race-safe) if there is none."""
    query = select(AppSecret.value).where(AppSecret.name == SIGNING_KEY)
    with engine.connect() as conn:
        stored = conn.scalar(query)
    if stored is not None:
        return stored.encode(), KeyOrigin.STORED
    adopted = legacy_key(var_dir)
    candidate = adopted or secrets.token_urlsafe(48)
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    insert = dialect.insert(AppSecret).values(name=SIGNING_KEY, value=candidate)
    with engine.begin() as conn:
        conn.execute(insert.on_conflict_do_nothing(index_elements=["name"]))
    with engine.connect() as conn:
        stored = conn.scalar(query)
    if stored is None:  # inserted above, by this process or by one that raced it
        raise DigestError(f"database {engine.url!r}: the signing key could not be stored")
    if stored != candidate:
        return stored.encode(), KeyOrigin.STORED  # another process wrote it first
    return stored.encode(), KeyOrigin.ADOPTED if adopted else KeyOrigin.GENERATED

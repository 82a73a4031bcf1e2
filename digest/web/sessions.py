"""Operator sessions in the database: logging out ends a session in every web process.

The cookie holds a random secret; the row holds only an HMAC of it (``Access``
signs it with the secret key and the admin token, so changing either ends
every session). A copied cookie stops working once its row is gone: on logout,
or after ``SESSION_SECONDS``.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from digest.core.db import transaction, utcnow
from digest.core.models import WebSession

SESSION_SECONDS = 12 * 3600


def open_session(factory: sessionmaker[Session], session_id: str) -> None:
    """Record a new session (and forget expired ones)."""
    now = utcnow()
    with transaction(factory) as s:
        s.execute(delete(WebSession).where(WebSession.expires_at <= now))
        s.add(
            WebSession(
                id=session_id,
                created_at=now,
                expires_at=now + timedelta(seconds=SESSION_SECONDS),
            )
        )


def session_alive(factory: sessionmaker[Session], session_id: str) -> bool:
    with factory() as s:
        expires = s.scalar(select(WebSession.expires_at).where(WebSession.id == session_id))
    return expires is not None and expires > utcnow()


def close_session(factory: sessionmaker[Session], session_id: str) -> None:
    """End a session: its cookie no longer opens anything, in any process."""
    with transaction(factory) as s:
        s.execute(delete(WebSession).where(WebSession.id == session_id))

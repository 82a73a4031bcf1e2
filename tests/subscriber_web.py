"""Helpers for subscriber web tests: the real app on the test database, tokens, DB reads."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from conftest import Captured, Cli
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from digest.core.db import make_engine, session_factory
from digest.core.settings import Settings
from digest.web.app import create_app
from subscribers.models import Subscriber
from subscribers.tokens import make_token

ONE_CLICK = {"Content-Type": "application/x-www-form-urlencoded"}
# The app serves only known Host names; TestClient's own ("testserver") is not one.
LOOPBACK = "http://127.0.0.1"


@dataclass
class Web:
    client: TestClient
    factory: sessionmaker[Session]
    settings: Settings

    def token(self, purpose: str, subscriber_id: int) -> str:
        return make_token(self.settings.signing_key(), purpose, subscriber_id)

    def subscriber(self, email_key: str) -> Subscriber:
        with self.factory() as s:
            sub = s.scalar(select(Subscriber).where(Subscriber.email_key == email_key))
            assert sub is not None, email_key
            return sub


@contextmanager
def web_app(cli: Cli, **extra: Any) -> Iterator[Web]:
    settings = cli.settings(**extra)
    engine = make_engine(settings.effective_database_url)
    # The test's own reads keep no pool: a test may read after the app has stopped, and a
    # pooled connection would outlive the engine's disposal.
    reader = make_engine(settings.effective_database_url, poolclass=NullPool)
    try:
        with TestClient(create_app(settings, session_factory(engine)), LOOPBACK) as client:
            yield Web(client, session_factory(reader), settings)
    finally:
        engine.dispose()
        reader.dispose()


def confirmation_links(captured: Captured) -> list[str]:
    """The confirm link of each captured message (from its text part), in order."""
    links = []
    for msg in captured.messages():
        text = msg.get_body(("plain",))
        assert text is not None
        found = re.search(r"https?://\S+/confirm/(\S+)", text.get_content())
        assert found, text.get_content()
        links.append(found.group(0))
    return links

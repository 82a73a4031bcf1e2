"""Helpers for delivery tests: an edition with many subscribers inserted in bulk."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from conftest import REFERENCE_STORY, Cli
from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

from digest.core.db import make_engine, session_factory, transaction, utcnow
from digest.core.models import Delivery
from digest.core.settings import Settings
from digest.delivery import lifecycle
from digest.delivery.manager import DeliveryManager, DeliveryOptions, SendSummary
from digest.delivery.messages import EditionMessages
from digest.editions import assemble
from digest.mail.message import prepare
from digest.transports.base import Transport
from subscribers.models import Subscriber
from subscribers.status import SubscriberStatus

FAST = DeliveryOptions(connections=3, claim_batch=20, backoff=0.01, status_every=0)


def add_subscribers(factory: sessionmaker[Session], n: int, start: int = 0) -> list[str]:
    emails = [f"reader{i:05d}@example.com" for i in range(start, start + n)]
    now = utcnow()
    with transaction(factory) as s:
        s.execute(
            insert(Subscriber),
            [
                {
                    "email": e,
                    "email_key": e,
                    "name": "",
                    "status": SubscriberStatus.ACTIVE,
                    "source": "test",
                    "created_at": now,
                    "status_changed_at": now,
                }
                for e in emails
            ],
        )
    return emails


@dataclass
class Edition:
    settings: Settings
    factory: sessionmaker[Session]
    id: int
    emails: list[str]

    def start(self) -> None:
        with transaction(self.factory) as s:
            lifecycle.start(
                s,
                assemble.get(s, str(self.id)),
                "localhost",
                signing_key=self.settings.signing_key(),
            )

    def manager(self, transport: Transport, options: DeliveryOptions = FAST) -> DeliveryManager:
        with self.factory() as s:
            view = assemble.view_of(assemble.get(s, str(self.id)))
        messages = prepare(self.settings, view, self.id)
        return DeliveryManager(self.factory, transport, EditionMessages(messages), options)

    def send(self, transport: Transport, options: DeliveryOptions = FAST) -> SendSummary:
        return self.manager(transport, options).run()

    def states(self) -> dict[str, str]:
        with self.factory() as s:
            rows = s.execute(
                select(Subscriber.email, Delivery.state)
                .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
                .where(Delivery.edition_id == self.id)
            ).all()
        return {email: str(state) for email, state in rows}

    def outcomes(self) -> dict[str, tuple[str, str | None, int | None]]:
        """Each subscriber's (state, last error, SMTP reply code)."""
        with self.factory() as s:
            rows = s.execute(
                select(Subscriber.email, Delivery.state, Delivery.last_error, Delivery.reply_code)
                .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
                .where(Delivery.edition_id == self.id)
            ).all()
        return {email: (str(state), error, code) for email, state, error, code in rows}

    def status(self) -> str:
        with self.factory() as s:
            return str(assemble.get(s, str(self.id)).status)


@contextmanager
def edition_with(cli: Cli, subscribers: int, **settings: Any) -> Iterator[Edition]:
    """An initialised database with the reference story in edition 1 and N subscribers."""
    cli("init")
    cli("stories", "import", str(REFERENCE_STORY))
    cfg = cli.settings(**settings)
    engine = make_engine(cfg.effective_database_url)
    factory = session_factory(engine)
    try:
        emails = add_subscribers(factory, subscribers)
        cli("edition", "build")
        yield Edition(cfg, factory, 1, emails)
    finally:
        engine.dispose()

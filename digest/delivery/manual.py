"""Manual sends that never touch the ledger: a test send to one address, and a dry run."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from digest.core.errors import DeliveryError
from digest.core.models import Delivery
from digest.core.settings import Settings
from digest.core.status import DeliveryState
from digest.editions import assemble
from digest.mail.message import Recipient, prepare
from digest.transports.base import SendFailure, Transport
from subscribers import service
from subscribers.addresses import check_address
from subscribers.models import Subscriber
from subscribers.status import SubscriberStatus


def _edition_id(session: Session, ref: str) -> int | None:
    return None if ref == "next" else assemble.get(session, ref).id


def test_send(
    settings: Settings,
    factory: sessionmaker[Session],
    ref: str,
    address: str,
    transport: Transport,
) -> str:
    """Send edition ``ref`` (or ``next``) to one address; returns the Message-ID.

    A known subscriber gets their own links and name; anyone else gets the
    message as a subscriber with no links of their own would. Nothing is recorded.
    """
    email, _ = check_address(address)
    with factory() as s:
        view = assemble.view(s, ref)
        edition_id = _edition_id(s, ref)
        known = service.find(s, email)
    recipient = Recipient(known.id, known.email, known.name) if known else Recipient(0, email, "")
    messages = prepare(settings, view, edition_id, test_send=True)
    data = messages.build(recipient)
    try:
        transport.send(messages.sender.addr_spec, recipient.email, data)
    except SendFailure as exc:
        raise DeliveryError(settings.smtp_url.split("@")[-1], f"test send refused: {exc}") from None
    finally:
        transport.close()
    return messages.message_id(recipient)


@dataclass
class DryRun:
    edition: str
    subject: str
    size: int
    stories: int
    recipients: list[tuple[str, str]] = field(default_factory=list)
    already_done: int = 0


def dry_run(settings: Settings, factory: sessionmaker[Session], ref: str) -> DryRun:
    """Who would get what if ``ref`` were sent now; nothing is sent or stored."""
    with factory() as s:
        view = assemble.view(s, ref)
        edition_id = _edition_id(s, ref)
        done: set[int] = set()
        if edition_id is not None:
            done = set(
                s.scalars(
                    select(Delivery.subscriber_id).where(
                        Delivery.edition_id == edition_id,
                        Delivery.state.not_in([DeliveryState.PENDING, DeliveryState.CLAIMED]),
                    )
                )
            )
        active = s.execute(
            select(Subscriber.id, Subscriber.email, Subscriber.name)
            .where(Subscriber.status == SubscriberStatus.ACTIVE)
            .order_by(Subscriber.id)
        ).all()
    messages = prepare(settings, view, edition_id)
    sample = messages.build(Recipient(0, "preview@example.com", "Preview Reader"))
    return DryRun(
        edition=str(edition_id) if edition_id is not None else "next",
        subject=messages.rendered.subject,
        size=len(sample),
        stories=len(view.stories),
        recipients=[(email, name) for sid, email, name in active if sid not in done],
        already_done=len(done),
    )

"""A manual send that never touches the ledger: a test send to one address.

The dry run (whom a real send would mail) is ``digest.delivery.readers.dry_run``."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from digest.core.errors import DeliveryError
from digest.core.settings import Settings
from digest.editions import assemble
from digest.mail.message import Recipient, prepare_edition
from digest.render.edition import stored_render
from digest.transports.base import SendFailure, Transport
from subscribers import service
from subscribers.addresses import check_address, wire_address


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
    email, _ = check_address(address, smtputf8=settings.smtputf8)
    with factory() as s:
        view = assemble.view(s, ref)
        # A started edition is tested as it goes out: from the render stored at its start.
        stored = None if ref == "next" else stored_render(assemble.get(s, ref))
        edition_id = _edition_id(s, ref)
        known = service.find(s, email)
    recipient = (
        Recipient(known.id, known.email, known.name, known.token_version)
        if known
        else Recipient(0, email, "")
    )
    messages = prepare_edition(settings, view, stored, edition_id, test_send=True)
    data = messages.build(recipient)
    try:
        transport.send(
            messages.envelope_sender(recipient.subscriber_id), wire_address(recipient.email), data
        )
    except SendFailure as exc:
        raise DeliveryError(settings.smtp_url.split("@")[-1], f"test send refused: {exc}") from None
    finally:
        transport.close()
    return messages.message_id(recipient)

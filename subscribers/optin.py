"""Double opt-in: record a subscription request, mail the confirmation link, confirm.

The request answers the same whatever the address's history (no enumeration);
only this module decides whether a confirmation mail goes out, at most one per
address every DIGEST_CONFIRM_INTERVAL_MINUTES.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid

from mjml import mjml2html
from sqlalchemy.orm import Session

from digest.core.db import utcnow
from digest.core.errors import DigestError, RenderError
from digest.core.settings import Settings
from digest.render.edition import make_environment
from digest.transports.base import SendFailure
from digest.transports.factory import open_transport
from subscribers.addresses import check_address, check_name, check_timezone
from subscribers.lifecycle import TransitionError, transition
from subscribers.models import Subscriber
from subscribers.service import by_key, forget_suppression
from subscribers.status import SubscriberSource, SubscriberStatus
from subscribers.tokens import make_token

log = logging.getLogger(__name__)

HTML_TEMPLATE = "confirm.mjml"
TEXT_TEMPLATE = "confirm.txt"


@dataclass(frozen=True)
class Confirmation:
    """A confirmation mail to send (after the request's transaction committed)."""

    subscriber_id: int
    email: str
    name: str


def request_subscription(
    session: Session,
    settings: Settings,
    address: str,
    name: str | None = None,
    timezone: str | None = None,
    source: str = SubscriberSource.WEB,
    now: datetime | None = None,
) -> Confirmation | None:
    """Record a request to subscribe; the confirmation mail to send, or None.

    New addresses become ``pending``; unsubscribed or bounced ones go back to
    ``pending``; active and complained ones are left alone. Nothing about an
    existing subscriber other than its status changes here: the request is
    not authenticated. SubscriberError for a bad address, name or time zone.
    """
    email, key = check_address(address, settings.check_deliverability)
    clean_name = check_name(name)
    zone = check_timezone(timezone)
    now = now or utcnow()
    sub = by_key(session, key)
    if sub is None:
        sub = Subscriber(
            email=email,
            email_key=key,
            name=clean_name,
            status=SubscriberStatus.PENDING,
            source=str(source),
            timezone=zone,
            attributes={},
            created_at=now,
            status_changed_at=now,
        )
        session.add(sub)
    elif sub.status in (SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.BOUNCED):
        transition(sub, SubscriberStatus.PENDING, now)
    elif sub.status != SubscriberStatus.PENDING:
        return None
    interval = timedelta(minutes=settings.confirm_interval_minutes)
    last = sub.last_confirmation_sent_at
    if last is not None and now - last < interval:
        return None
    sub.last_confirmation_sent_at = now
    session.flush()
    return Confirmation(sub.id, sub.email, sub.name)


def confirm(session: Session, sub: Subscriber) -> bool:
    """Pending → active; False if already active. TransitionError from other statuses.

    A paused subscriber is not resumed by an old confirmation link.
    """
    if sub.status == SubscriberStatus.PAUSED:
        raise TransitionError(sub.email, sub.status, SubscriberStatus.ACTIVE)
    changed = transition(sub, SubscriberStatus.ACTIVE)
    if changed:
        # The address itself asked again: an old erasure no longer suppresses it.
        forget_suppression(session, sub.email_key)
    return changed


def confirm_url(settings: Settings, subscriber_id: int) -> str:
    token = make_token(settings.signing_key(), "confirm", subscriber_id)
    return f"{settings.base_url}/confirm/{token}"


def build_confirmation(settings: Settings, confirmation: Confirmation) -> EmailMessage:
    """The confirmation message: MJML + text templates, rendered per request (not a hot path)."""
    env = make_environment(settings.templates_dir)
    context = {
        "newsletter": settings.newsletter_name,
        "confirm_url": confirm_url(settings, confirmation.subscriber_id),
        "name": confirmation.name,
        "base_url": settings.base_url,
        "lang": settings.lang,
        "postal_address": settings.postal_address,
    }
    try:
        mjml_source = env.get_template(HTML_TEMPLATE).render(context)
        text = env.get_template(TEXT_TEMPLATE).render(context)
        html = mjml2html(mjml_source, fonts={}, disable_comments=True)
    except (ValueError, RuntimeError) as exc:
        raise RenderError(HTML_TEMPLATE, str(exc)) from None
    msg = EmailMessage()
    msg["From"] = settings.sender
    msg["To"] = Address(display_name=confirmation.name, addr_spec=confirmation.email)
    msg["Subject"] = f"Confirm your subscription to {settings.newsletter_name}"
    msg["Date"] = format_datetime(utcnow())
    msg["Message-ID"] = make_msgid(domain=settings.sender.domain or "localhost")
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(text, cte="quoted-printable")
    msg.add_alternative(html, subtype="html", cte="quoted-printable")
    return msg


def send_confirmation(settings: Settings, confirmation: Confirmation) -> bool:
    """Mail the confirmation link over the configured SMTP server; False (logged) on failure."""
    return send_confirmations(settings, [confirmation]) == 1


def send_confirmations(
    settings: Settings,
    confirmations: Sequence[Confirmation],
    progress: Callable[[int], None] | None = None,
) -> int:
    """Mail each confirmation over one SMTP connection; how many went out (failures logged)."""
    if not confirmations:
        return 0
    sent = 0
    try:
        transport = open_transport(settings)
    except (DigestError, ValueError) as exc:
        log.warning("%d confirmation mails not sent: %s", len(confirmations), exc)
        return 0
    try:
        for confirmation in confirmations:
            try:
                # CRLF line ends: transports write the bytes to the wire as they are.
                message = build_confirmation(settings, confirmation).as_bytes(policy=SMTP)
                transport.send(settings.sender.addr_spec, confirmation.email, message)
                sent += 1
            except (DigestError, SendFailure, ValueError) as exc:
                log.warning(
                    "confirmation mail to subscriber %s not sent: %s",
                    confirmation.subscriber_id,
                    exc,
                )
            if progress is not None:
                progress(1)
    finally:
        transport.close()
    return sent

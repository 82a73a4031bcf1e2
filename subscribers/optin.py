"""Double opt-in: record a subscription request, confirm it, the confirmation link.

The request answers the same whatever the address's history (no enumeration);
only this module decides whether a confirmation mail goes out, at most one per
address every DIGEST_CONFIRM_INTERVAL_MINUTES (digest.mail.confirmation sends it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from digest.core.db import utcnow
from digest.core.settings import Settings
from subscribers.addresses import check_address, check_name, check_timezone
from subscribers.lifecycle import TransitionError, transition
from subscribers.models import Subscriber
from subscribers.service import by_key, forget_suppression
from subscribers.status import SubscriberSource, SubscriberStatus
from subscribers.tokens import make_token


@dataclass(frozen=True)
class Confirmation:
    """A confirmation mail to send (after the request's transaction committed)."""

    subscriber_id: int
    email: str
    name: str
    token_version: int


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
    email, key = check_address(address, settings.check_deliverability, smtputf8=settings.smtputf8)
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
            cadence=settings.default_cadence,
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
    return Confirmation(sub.id, sub.email, sub.name, sub.token_version)


def confirm(session: Session, sub: Subscriber) -> bool:
    """Pending → active; False if already active. TransitionError from other statuses.

    A paused subscriber is not resumed by an old confirmation link.
    """
    if sub.status == SubscriberStatus.PAUSED:
        raise TransitionError(sub.email, sub.status, SubscriberStatus.ACTIVE)
    changed = transition(sub, SubscriberStatus.ACTIVE)
    if changed:
        # The address itself asked again: an old erasure no longer suppresses it.
        forget_suppression(session, sub)
    return changed


def confirm_url(settings: Settings, confirmation: Confirmation) -> str:
    """The link that confirms this request (signed, see subscribers.tokens)."""
    key = settings.signing_key()
    token = make_token(key, "confirm", confirmation.subscriber_id, confirmation.token_version)
    return f"{settings.base_url}/confirm/{token}"

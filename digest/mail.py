"""Turn a rendered edition into one MIME message per recipient."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

from digest.db import utcnow
from digest.errors import SubscriberError
from digest.render import Rendered
from subscribers.tokens import make_token


@dataclass(frozen=True)
class Recipient:
    subscriber_id: int
    email: str
    name: str


def message_id(edition_id: int, subscriber_id: int, domain: str) -> str:
    """The same Message-ID every time for one (edition, subscriber): resends are recognisable."""
    digest = hashlib.sha256(f"{edition_id}:{subscriber_id}:{domain}".encode()).hexdigest()[:12]
    return f"<digest.{edition_id}.{subscriber_id}.{digest}@{domain}>"


class MessageFactory:
    """Builds each recipient's message from an edition rendered once."""

    def __init__(
        self,
        rendered: Rendered,
        *,
        edition_id: int,
        sender: Address,
        base_url: str,
        signing_key: bytes,
    ) -> None:
        self.rendered = rendered
        self.edition_id = edition_id
        self.sender = sender
        self.base_url = base_url
        self.signing_key = signing_key
        self.domain = sender.domain or "localhost"
        self.date = format_datetime(utcnow())

    def message_id(self, recipient: Recipient) -> str:
        return message_id(self.edition_id, recipient.subscriber_id, self.domain)

    def unsubscribe_url(self, recipient: Recipient) -> str:
        token = make_token(self.signing_key, "unsubscribe", recipient.subscriber_id)
        return f"{self.base_url}/unsubscribe/{token}"

    def build(self, recipient: Recipient) -> bytes:
        unsubscribe = self.unsubscribe_url(recipient)
        html, text = self.rendered.personalize(
            {"unsubscribe_url": unsubscribe, "name": recipient.name}
        )
        msg = EmailMessage(policy=SMTP)
        try:
            msg["To"] = Address(display_name=recipient.name, addr_spec=recipient.email)
        except (ValueError, IndexError) as exc:
            raise SubscriberError(
                recipient.email, f"cannot address a message to it: {exc}"
            ) from None
        msg["From"] = self.sender
        msg["Subject"] = self.rendered.subject
        msg["Date"] = self.date
        msg["Message-ID"] = self.message_id(recipient)
        msg["List-Unsubscribe"] = f"<{unsubscribe}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        msg.set_content(text, cte="quoted-printable")
        msg.add_alternative(html, subtype="html", cte="quoted-printable")
        return msg.as_bytes()

"""Turn a rendered edition into one MIME message per recipient.

``MessageFactory.build`` is the hot path: a ``MessageTemplate`` compiled once
per edition, filled per recipient. ``build_reference`` makes the same message
with ``EmailMessage``; it is the yardstick the fast path is tested against.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from email import message_from_bytes
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP, default
from email.utils import format_datetime
from functools import cached_property
from typing import TYPE_CHECKING

from digest.core.db import utcnow
from digest.core.errors import ConfigError, RenderError, SubscriberError
from digest.mail.dkim import DkimSigner
from digest.mail.mime import HeaderValueError, MessageTemplate, check_header_value, format_address
from digest.mail.return_path import message_id, verp_address
from digest.render.edition import EditionView, Rendered, render_with
from subscribers.addresses import wire_address
from subscribers.tokens import make_token

if TYPE_CHECKING:
    from digest.core.settings import Settings

ONE_CLICK = "List-Unsubscribe=One-Click"
RECIPIENT_HEADERS = ("To", "Message-ID", "List-Unsubscribe")
# The setting each static header comes from (List-Id defaults from DIGEST_NEWSLETTER_NAME).
HEADER_SETTINGS = {
    "From": "DIGEST_FROM",
    "List-Id": "DIGEST_LIST_ID",
    "Feedback-ID": "DIGEST_FEEDBACK_ID",
}


@dataclass(frozen=True)
class Recipient:
    subscriber_id: int
    email: str
    name: str
    token_version: int = 1  # the subscriber's link version (subscribers.tokens)
    topics: tuple[str, ...] = ()  # the story tags they chose (none: everything)


def topics_label(topics: Sequence[str]) -> str:
    """How a digest's header names a reader's topics."""
    return ", ".join(topics) if topics else "everything"


@dataclass(frozen=True)
class MailOptions:
    """Everything about the message that comes from settings rather than the edition."""

    sender: Address
    base_url: str
    signing_key: bytes
    list_id: str = ""
    unsubscribe_mailto: str = ""
    feedback_id: str = ""
    dkim: DkimSigner | None = None
    bounce_address: str = ""  # DIGEST_BOUNCE_ADDRESS: VERP return paths when set

    @property
    def domain(self) -> str:
        return self.sender.domain or "localhost"

    @property
    def one_click(self) -> bool:
        """RFC 8058 one-click is advertised only for an HTTPS unsubscribe URI."""
        return self.base_url.startswith("https://")

    @classmethod
    def from_settings(cls, settings: Settings) -> MailOptions:
        sender = settings.sender
        domain = sender.domain or "localhost"
        return cls(
            sender=sender,
            base_url=settings.base_url,
            signing_key=settings.signing_key(),
            list_id=settings.list_id or f"{settings.newsletter_name} <digest.{domain}>",
            unsubscribe_mailto=settings.unsubscribe_mailto,
            feedback_id=settings.feedback_id,
            bounce_address=settings.bounce_address,
            dkim=DkimSigner.from_settings(settings, domain),
        )


class MessageFactory:
    """Builds each recipient's message from an edition rendered once."""

    def __init__(
        self,
        rendered: Rendered,
        *,
        edition_id: int,
        options: MailOptions,
        test_send: bool = False,
    ) -> None:
        self.rendered = rendered
        # A test send gets a Message-ID of its own each time: a receiver that has seen
        # the real (deterministic) one, or an earlier test, may drop it as a duplicate.
        self.test_token = secrets.token_hex(8) if test_send else None
        self.edition_id = edition_id
        self.options = options
        self.sender = options.sender
        self.domain = options.domain
        self.date = format_datetime(utcnow())
        self.boundary = (
            f"=_digest_{edition_id}_{hashlib.sha256(rendered.html.encode()).hexdigest()[:16]}"
        )

    # -- per-recipient values ---------------------------------------------

    def message_id(self, recipient: Recipient) -> str:
        if self.test_token is not None:
            return f"<digest.test.{self.edition_id}.{self.test_token}@{self.domain}>"
        key = self.options.signing_key
        return message_id(key, self.edition_id, recipient.subscriber_id, self.domain)

    def envelope_sender(self, subscriber_id: int) -> str:
        """MAIL FROM of this subscriber's message: its VERP address, else the From address."""
        bounce = self.options.bounce_address
        if not bounce:
            return self.sender.addr_spec
        if self.test_token is not None:
            return bounce  # a test send names no delivery
        return verp_address(bounce, self.options.signing_key, self.edition_id, subscriber_id)

    def _token(self, purpose: str, recipient: Recipient) -> str:
        key = self.options.signing_key
        return make_token(key, purpose, recipient.subscriber_id, recipient.token_version)

    def unsubscribe_url(self, recipient: Recipient) -> str:
        return f"{self.options.base_url}/unsubscribe/{self._token('unsubscribe', recipient)}"

    def preferences_url(self, recipient: Recipient) -> str:
        return f"{self.options.base_url}/preferences/{self._token('preferences', recipient)}"

    def body_values(self, recipient: Recipient) -> dict[str, str]:
        return {
            "unsubscribe_url": self.unsubscribe_url(recipient),
            "preferences_url": self.preferences_url(recipient),
            "name": recipient.name,
            "topics": topics_label(recipient.topics),
        }

    def list_unsubscribe(self, unsubscribe_url: str) -> str:
        """The List-Unsubscribe value: the unsubscribe URI, then a mailto: when configured."""
        value = f"<{unsubscribe_url}>"
        if self.options.unsubscribe_mailto:
            # Folded between the two URIs to keep header lines short.
            value += f",\r\n <mailto:{self.options.unsubscribe_mailto}>"
        return value

    # -- the static part --------------------------------------------------

    def static_headers(self) -> list[tuple[str, str]]:
        """Headers the same for every recipient, in message order (recipient ones as None)."""
        headers = [
            ("From", str(self.sender)),
            ("Subject", self.rendered.subject),
            ("Date", self.date),
            ("List-Id", self.options.list_id),
        ]
        if self.options.one_click:
            headers.append(("List-Unsubscribe-Post", ONE_CLICK))
        if self.options.feedback_id:
            headers.append(("Feedback-ID", self.options.feedback_id))
        return headers

    def header_order(self) -> list[str]:
        order = ["From", "To", "Subject", "Date", "Message-ID", "List-Id", "List-Unsubscribe"]
        order += ["List-Unsubscribe-Post"] if self.options.one_click else []
        return order + (["Feedback-ID"] if self.options.feedback_id else [])

    @cached_property
    def template(self) -> MessageTemplate:
        """The message compiled once. A static header that cannot be written is a
        ConfigError naming the setting it comes from (a RenderError for the subject)."""
        try:
            return MessageTemplate.build(
                static_headers=self.static_headers(),
                recipient_headers=RECIPIENT_HEADERS,
                header_order=self.header_order(),
                text=self.rendered.text,
                html=self.rendered.html,
                placeholders=self.rendered.placeholders,
                boundary=self.boundary,
            )
        except HeaderValueError as exc:
            setting = HEADER_SETTINGS.get(exc.header)
            if setting is None:
                raise RenderError("subject", str(exc)) from None
            raise ConfigError(setting, str(exc)) from None

    # -- building -----------------------------------------------------------

    def build(self, recipient: Recipient) -> bytes:
        """This recipient's message bytes (the fast path); SubscriberError for a bad address."""
        values = self.body_values(recipient)
        try:
            check_header_value("name", recipient.name)
            headers = {
                "To": format_address(recipient.name, wire_address(recipient.email)),
                "Message-ID": self.message_id(recipient),
                "List-Unsubscribe": self.list_unsubscribe(
                    check_header_value("List-Unsubscribe", values["unsubscribe_url"])
                ),
            }
        except HeaderValueError as exc:
            raise SubscriberError(
                recipient.email, f"cannot address a message to it: {exc}"
            ) from None
        message = self.template.fill(headers, values)
        return self.options.dkim.sign(message) if self.options.dkim else message

    def build_reference(self, recipient: Recipient) -> bytes:
        """The same message built with ``EmailMessage`` (slow; for tests and the benchmark)."""
        values = self.body_values(recipient)
        html, text = self.rendered.personalize(values)
        msg = EmailMessage(policy=SMTP)
        recipient_values = {
            "Message-ID": self.message_id(recipient),
            "List-Unsubscribe": self.list_unsubscribe(values["unsubscribe_url"]).replace(
                "\r\n", ""
            ),
        }
        static = dict(self.static_headers())
        for name in self.header_order():
            if name == "To":
                try:
                    msg["To"] = Address(
                        display_name=recipient.name, addr_spec=wire_address(recipient.email)
                    )
                except (ValueError, IndexError) as exc:
                    raise SubscriberError(
                        recipient.email, f"cannot address a message to it: {exc}"
                    ) from None
            else:
                msg[name] = recipient_values[name] if name in recipient_values else static[name]
        msg.set_content(text, cte="quoted-printable")
        msg.add_alternative(html, subtype="html", cte="quoted-printable")
        message = msg.as_bytes()
        return self.options.dkim.sign(message) if self.options.dkim else message


SAMPLE_RECIPIENT = Recipient(0, "preview@example.com", "Preview Reader")


def prepare(
    settings: Settings,
    view: EditionView,
    edition_id: int | None = None,
    nonce: str | None = None,
    *,
    test_send: bool = False,
) -> MessageFactory:
    """Render an edition once and get its message factory: what sending, preview and check share.

    ``test_send``: every factory gets fresh Message-IDs (see ``MessageFactory``)."""
    rendered = render_with(settings, view, nonce=nonce)
    number = edition_id if edition_id is not None else (view.number or 0)
    return from_render(settings, rendered, number, test_send=test_send)


def from_render(
    settings: Settings, rendered: Rendered, edition_id: int, *, test_send: bool = False
) -> MessageFactory:
    """The message factory of a render made earlier (the one stored when an edition started):
    no Jinja or MJML work, only the settings' part (sender, links, DKIM) is added."""
    options = MailOptions.from_settings(settings)
    return MessageFactory(rendered, edition_id=edition_id, options=options, test_send=test_send)


def prepare_edition(
    settings: Settings,
    view: EditionView,
    stored: Rendered | None,
    edition_id: int | None = None,
    *,
    test_send: bool = False,
) -> MessageFactory:
    """``stored`` (a started edition's render) when there is one, else render ``view`` live."""
    if stored is None:
        return prepare(settings, view, edition_id, test_send=test_send)
    number = edition_id if edition_id is not None else (view.number or 0)
    return from_render(settings, stored, number, test_send=test_send)


def parts_of(message: bytes) -> tuple[str, str]:
    """The (text, HTML) bodies of a built message, decoded."""
    parsed = message_from_bytes(message, policy=default)
    assert isinstance(parsed, EmailMessage)
    text, html = (part.get_content() for part in parsed.iter_parts())
    return text, html

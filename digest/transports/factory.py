"""The transport DIGEST_SMTP_URL names, opened for a sender."""

from __future__ import annotations

from digest.core.settings import Settings
from digest.transports.base import Transport
from digest.transports.maildir import SCHEMES, MaildirTransport, parse_maildir_url
from digest.transports.smtp import SmtpTransport


def open_transport(settings: Settings) -> Transport:
    """The transport DIGEST_SMTP_URL names: SMTP (``smtp``, ``smtp+starttls``, ``smtps``)
    or a Maildir (``maildir:///path``, ``file:///path``)."""
    if settings.smtp_url.split(":", 1)[0] in SCHEMES:
        return MaildirTransport(parse_maildir_url(settings.smtp_url))
    return SmtpTransport.from_settings(settings)

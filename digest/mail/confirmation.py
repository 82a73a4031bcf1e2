"""The double opt-in confirmation mail: build it from the templates and send it.

Who gets one, and when, is decided by subscribers.optin (a subscription
request) and by subscribers.csv_import (a ``--pending`` import); this module
mails them, after the transaction that decided it committed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP, SMTPUTF8
from email.utils import format_datetime, make_msgid
from pathlib import Path

from mjml import mjml2html
from sqlalchemy.orm import Session, sessionmaker

from digest.core.db import transaction, utcnow
from digest.core.errors import DigestError, RenderError
from digest.core.settings import Settings
from digest.render.edition import make_environment
from digest.transports.base import SendFailure
from digest.transports.factory import open_transport
from subscribers.addresses import wire_address
from subscribers.csv_import import CsvReport, ImportOptions, import_csv
from subscribers.csv_parse import RowCounter
from subscribers.optin import Confirmation, confirm_url

log = logging.getLogger(__name__)

HTML_TEMPLATE = "confirm.mjml"
TEXT_TEMPLATE = "confirm.txt"


def build_confirmation(settings: Settings, confirmation: Confirmation) -> EmailMessage:
    """The confirmation message: MJML + text templates, rendered per request (not a hot path)."""
    env = make_environment(settings.templates_dir)
    context = {
        "newsletter": settings.newsletter_name,
        "confirm_url": confirm_url(settings, confirmation),
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
    recipient = wire_address(confirmation.email)
    # A non-ASCII local part goes as UTF-8 (SMTPUTF8), in the To header too. CRLF line
    # ends either way: transports write the bytes to the wire as they are.
    msg = EmailMessage(policy=SMTP if recipient.isascii() else SMTPUTF8)
    msg["From"] = settings.sender
    if recipient.isascii():
        msg["To"] = Address(display_name=confirmation.name, addr_spec=recipient)
    else:  # Address(addr_spec=) refuses a non-ASCII local part, Address(username=) does not
        local, _, domain = recipient.rpartition("@")
        msg["To"] = Address(display_name=confirmation.name, username=local, domain=domain)
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
                message = build_confirmation(settings, confirmation).as_bytes()
                transport.send(settings.sender.addr_spec, wire_address(confirmation.email), message)
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


def import_and_confirm(
    factory: sessionmaker[Session],
    settings: Settings,
    path: Path,
    options: ImportOptions | None = None,
    counter: RowCounter | None = None,
) -> tuple[CsvReport, int]:
    """Import a CSV in one transaction, then mail the confirmations it owes (``--pending``).

    The import's report and how many confirmation mails went out (failures are
    logged; ``len(report.to_confirm) - sent`` failed). ``counter`` follows the
    import's stages, then the mails.
    """
    with transaction(factory) as s:
        report = import_csv(
            s,
            path,
            check_deliverability=settings.check_deliverability,
            options=options,
            progress=counter,
            smtputf8=settings.smtputf8,
        )
    if not report.to_confirm:
        return report, 0
    if counter is not None:
        counter.start("confirmation mails", len(report.to_confirm))
    advance = counter.advance if counter is not None else None
    return report, send_confirmations(settings, report.to_confirm, advance)

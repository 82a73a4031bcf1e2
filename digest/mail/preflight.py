"""The preflight: settings that are fine for a local try-out but wrong for real mail.

While ``DIGEST_SMTP_URL`` names a server on this machine (a capture sink, a
Maildir) anything goes. Once it names any other host, the defaults would put
``http://127.0.0.1`` unsubscribe links, an ``@localhost`` sender and no postal
address in front of real people: RFC 8058 one-click (which Gmail and Yahoo
require from bulk senders) needs an HTTPS URI the receiver can reach, and a
commercial message needs a postal address. ``preflight`` names each such
setting in one line, from the settings alone: it resolves and connects to nothing.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from digest.core.settings import Settings

SMTP_SCHEMES = ("smtp", "smtp+starttls", "smtps")


def is_loopback_host(host: str) -> bool:
    """``host`` (a name or an IP literal) names this machine: ``localhost``, 127/8, ``::1``."""
    host = host.strip().strip("[]").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_loopback or address.is_unspecified


def smtp_leaves_this_machine(settings: Settings) -> bool:
    """DIGEST_SMTP_URL names an SMTP server that is not on loopback (a Maildir, or a URL
    the transport will refuse naming the setting, is not one)."""
    try:
        parts = urlsplit(settings.smtp_url)
        host = parts.hostname or ""
    except ValueError:
        return False
    return parts.scheme in SMTP_SCHEMES and bool(host) and not is_loopback_host(host)


def preflight(settings: Settings) -> list[str]:
    """One line per setting that must change before mail goes through a real relay."""
    if not smtp_leaves_this_machine(settings):
        return []
    problems: list[str] = []
    base = urlsplit(settings.base_url)
    faults = [
        *(["is not https"] if base.scheme != "https" else []),
        *(["points at this machine"] if is_loopback_host(base.hostname or "") else []),
    ]
    if faults:
        problems.append(
            f"DIGEST_BASE_URL {settings.base_url!r} {' and '.join(faults)}: one-click"
            " unsubscribe (RFC 8058, required by Gmail and Yahoo) needs an https:// link"
            " recipients can reach"
        )
    domain = settings.sender.domain or ""
    if not domain or is_loopback_host(domain):
        problems.append(
            f"DIGEST_FROM {settings.from_address!r} has the domain {domain or '(none)'!r}:"
            " use a domain you send from (with SPF, DKIM and DMARC)"
        )
    if not settings.postal_address:
        problems.append(
            "DIGEST_POSTAL_ADDRESS is empty: bulk mail must carry the sender's postal address"
        )
    return problems

"""Address, name and time-zone validation, the normalized key subscribers are unique on,
and the form an address takes on the wire.

One mailbox, one key: the key is the address trimmed and lower-cased, local
part included (``ADA@EXAMPLE.COM`` and ``ada@example.com`` are one
subscriber), with an internationalised domain in its Unicode form (an
``xn--`` spelling of it gives the same key). On the wire (RCPT TO, the To
header) such a domain goes as its ASCII form, IDNA 2008 with UTS #46 mapping
(the ``idna`` package; Python's own ``idna`` codec is IDNA 2003 and maps
``faß.de`` to another domain, ``fass.de``). A local part that is not ASCII
needs SMTPUTF8 end to end, so it is accepted only when the relay supports it
(``DIGEST_SMTPUTF8``).
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import idna
from email_validator import EmailNotValidError, validate_email

from digest.core.errors import SubscriberError

MAX_NAME = 200
MAX_TIMEZONE = 64


NOT_ASCII_LOCAL = (
    "the part before the @ is not ASCII, which only a mail server with SMTPUTF8 can take"
    " (set DIGEST_SMTPUTF8=true if yours does)"
)


def check_address(
    raw: str, check_deliverability: bool = False, *, smtputf8: bool = False
) -> tuple[str, str]:
    """Return (address as given but trimmed, unique key) or raise SubscriberError.

    Syntax only unless ``check_deliverability`` (DIGEST_CHECK_DELIVERABILITY):
    then the domain must resolve (DNS). A non-ASCII local part is refused
    unless ``smtputf8`` (DIGEST_SMTPUTF8). The key lower-cases the whole
    address (an IDN domain kept as Unicode): see the module docstring.
    """
    email = raw.strip()
    if not email:
        raise SubscriberError(raw, "empty address")
    if any(c in email for c in "\r\n\0"):
        raise SubscriberError(raw, "line break or NUL in address")
    if not check_deliverability:
        key = _plain_key(email)
        if key is not None:
            return email, key
    try:
        info = validate_email(email, check_deliverability=check_deliverability)
    except EmailNotValidError as exc:
        raise SubscriberError(email, f"invalid address: {exc}") from None
    if info.smtputf8 and not smtputf8:
        raise SubscriberError(email, NOT_ASCII_LOCAL)
    return email, info.normalized.lower()


def legacy_key(email: str, key: str) -> str:
    """The key as it was before keys ignored the local part's case (the local part as
    typed): what the suppression hash of an address erased back then was taken of."""
    return email.rpartition("@")[0] + "@" + key.rpartition("@")[2]


# The common case, checked without email-validator's per-address cost (most of
# a 100k-row import): a plain ASCII dot-atom local part, which email-validator
# keeps as is, and a domain that email-validator checks once per distinct domain.
# Anything else takes the full path, which also words the error.
_PLAIN_LOCAL = re.compile(r"[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*")
_PLAIN_MAX = 128  # well inside every length limit, also after IDNA encoding of the domain


def _plain_key(email: str) -> str | None:
    """The key of a plainly valid address (as email-validator gives it), else None."""
    local, at, domain = email.rpartition("@")
    if not at or len(email) > _PLAIN_MAX or not _PLAIN_LOCAL.fullmatch(local):
        return None
    normalized = _domain_key(domain)
    return None if normalized is None else f"{local.lower()}@{normalized}"


@lru_cache(maxsize=4096)
def _domain_key(domain: str) -> str | None:
    try:
        return validate_email(f"a@{domain}", check_deliverability=False).domain
    except EmailNotValidError:
        return None


def wire_address(email: str) -> str:
    """``email`` as SMTP and the To header carry it: an IDN domain in its ASCII form.

    Cheap for the common case (an ASCII address comes back as it is) and
    cached per domain, so the sending path can call it per recipient. A domain
    IDNA cannot encode is left as it is (the transport then refuses it).
    """
    if email.isascii():
        return email
    local, at, domain = email.rpartition("@")
    ascii_domain = _ascii_domain(domain) if at else None
    return email if ascii_domain is None else f"{local}@{ascii_domain}"


@lru_cache(maxsize=4096)
def _ascii_domain(domain: str) -> str | None:
    if domain.isascii():
        return domain
    try:
        return idna.encode(domain, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        return None


def check_name(raw: str | None) -> str:
    name = (raw or "").strip()
    if any(ord(c) < 32 for c in name):
        raise SubscriberError("", f"control character in name {name!r}")
    if len(name) > MAX_NAME:
        raise SubscriberError("", f"name longer than {MAX_NAME} characters")
    return name


def check_timezone(raw: str | None) -> str | None:
    """An IANA time zone name (``Europe/Paris``), None when empty; SubscriberError if unknown."""
    return _check_zone((raw or "").strip())


@lru_cache(maxsize=1024)
def _check_zone(zone: str) -> str | None:
    if not zone:
        return None
    if len(zone) > MAX_TIMEZONE or not zone.isascii() or any(ord(c) < 32 for c in zone):
        raise SubscriberError("", f"unknown time zone {zone!r}")
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise SubscriberError("", f"unknown time zone {zone!r}") from None
    return zone


def key_hash(key: str) -> str:
    """The suppression-list form of an address key: SHA-256, hex.

    Unkeyed on purpose: it must survive a change of DIGEST_SECRET_KEY.
    """
    return hashlib.sha256(key.encode("utf-8")).hexdigest()

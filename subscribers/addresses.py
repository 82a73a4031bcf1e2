"""Address validation and the normalized key subscribers are unique on."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email

from digest.errors import SubscriberError

MAX_NAME = 200


def check_address(raw: str) -> tuple[str, str]:
    """Return (address as given but trimmed, unique key) or raise SubscriberError.

    Syntax only: no DNS lookups. The key lower-cases the domain (IDN kept as
    Unicode) and leaves the local part alone, as mail servers do.
    """
    email = raw.strip()
    if not email:
        raise SubscriberError(raw, "empty address")
    if any(c in email for c in "\r\n\0"):
        raise SubscriberError(raw, "line break or NUL in address")
    try:
        info = validate_email(email, check_deliverability=False)
    except EmailNotValidError as exc:
        raise SubscriberError(email, f"invalid address: {exc}") from None
    return email, info.normalized


def check_name(raw: str | None) -> str:
    name = (raw or "").strip()
    if any(ord(c) < 32 for c in name):
        raise SubscriberError("", f"control character in name {name!r}")
    if len(name) > MAX_NAME:
        raise SubscriberError("", f"name longer than {MAX_NAME} characters")
    return name

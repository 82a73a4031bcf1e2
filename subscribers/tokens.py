"""Signed per-subscriber tokens (unsubscribe, confirm, preferences).

A token names a subscriber and the version of their links: ``<id>.<signature>``
for version 1 (every subscriber's first, and the only spelling before versions
existed, so links mailed then still verify) and ``<id>.<version>.<signature>``
from version 2 on. The signature is an HMAC-SHA256 of the purpose, id and (from
2 on) version under the signing key, so a token for one purpose, subscriber or
version is worthless for another. Bumping a subscriber's version (``digest
subscribers revoke-links``) retires every token made before. Each token has
exactly one spelling: no leading zeros, and version 1 is never written out.
Comparison is constant-time.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
from typing import NamedTuple

PURPOSES = frozenset({"unsubscribe", "confirm", "preferences"})
FIRST_VERSION = 1


class TokenClaim(NamedTuple):
    """What a genuine token says: whose it is and which version of their links."""

    subscriber_id: int
    version: int


@functools.lru_cache(maxsize=8)
def _keyed(key: bytes) -> hmac.HMAC:
    """An HMAC with the key already mixed in; copied per token (a send signs two per message)."""
    return hmac.new(key, digestmod=hashlib.sha256)


def _head(subscriber_id: int, version: int) -> str:
    return f"{subscriber_id}" if version == FIRST_VERSION else f"{subscriber_id}.{version}"


def _signature(key: bytes, purpose: str, subscriber_id: int, version: int) -> str:
    # Version 1 signs what tokens signed before versions existed: "purpose:id".
    message = f"{purpose}:{subscriber_id}"
    if version != FIRST_VERSION:
        message += f":{version}"
    mac = _keyed(key).copy()
    mac.update(message.encode())
    return base64.urlsafe_b64encode(mac.digest()[:18]).decode().rstrip("=")


def make_token(key: bytes, purpose: str, subscriber_id: int, version: int = FIRST_VERSION) -> str:
    """The token for ``purpose`` of this subscriber's links at ``version``."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown token purpose {purpose!r}")
    if version < FIRST_VERSION:
        raise ValueError(f"token version must be at least {FIRST_VERSION}, not {version}")
    return f"{_head(subscriber_id, version)}.{_signature(key, purpose, subscriber_id, version)}"


def _number(text: str) -> int | None:
    # isascii(): str.isdigit() also accepts digits like '²' that int() refuses.
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        return None
    value = int(text)
    return value if text == str(value) else None  # one spelling: "01" is not "1"


def read_token(key: bytes, purpose: str, token: str) -> TokenClaim | None:
    """What a genuine token names, or None for anything else (forged, respelled, other purpose)."""
    # compare_digest() refuses non-ASCII str; a token is ASCII or it is not ours.
    if not token.isascii():
        return None
    head, sep, sig = token.rpartition(".")
    if not sep:
        return None
    subscriber_text, _, version_text = head.partition(".")
    subscriber_id = _number(subscriber_text)
    version = _number(version_text) if version_text else FIRST_VERSION
    if subscriber_id is None or version is None or version < FIRST_VERSION:
        return None
    if head != _head(subscriber_id, version):  # "7.1.<sig>" respells "7.<sig>"
        return None
    expected = _signature(key, purpose, subscriber_id, version)
    return TokenClaim(subscriber_id, version) if hmac.compare_digest(expected, sig) else None

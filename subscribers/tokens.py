"""Signed per-subscriber tokens (unsubscribe, confirm, preferences).

A token is ``<subscriber id>.<signature>``; the signature is an HMAC-SHA256 of
the purpose and id under the secret key, so a token for one purpose or one
subscriber is worthless for another. Comparison is constant-time.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac

PURPOSES = frozenset({"unsubscribe", "confirm", "preferences"})


@functools.lru_cache(maxsize=8)
def _keyed(key: bytes) -> hmac.HMAC:
    """An HMAC with the key already mixed in; copied per token (a send signs two per message)."""
    return hmac.new(key, digestmod=hashlib.sha256)


def _signature(key: bytes, purpose: str, subscriber_id: int) -> str:
    mac = _keyed(key).copy()
    mac.update(f"{purpose}:{subscriber_id}".encode())
    return base64.urlsafe_b64encode(mac.digest()[:18]).decode().rstrip("=")


def make_token(key: bytes, purpose: str, subscriber_id: int) -> str:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown token purpose {purpose!r}")
    return f"{subscriber_id}.{_signature(key, purpose, subscriber_id)}"


def read_token(key: bytes, purpose: str, token: str) -> int | None:
    """The subscriber id a genuine token names, or None for anything else."""
    head, sep, sig = token.partition(".")
    # isascii(): str.isdigit() also accepts digits like '²' that int() refuses, and
    # compare_digest() refuses non-ASCII str; a token is ASCII or it is not ours.
    if not sep or not token.isascii() or not head.isdigit() or len(head) > 18:
        return None
    if head != str(int(head)):  # one canonical spelling: "01.<sig>" is not "1.<sig>"
        return None
    subscriber_id = int(head)
    expected = _signature(key, purpose, subscriber_id)
    return subscriber_id if hmac.compare_digest(expected, sig) else None

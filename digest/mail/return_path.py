"""Signed marks of one delivery: its Message-ID and its VERP return path.

One HMAC-SHA256 of ``delivery:EDITION:SUBSCRIBER`` under the signing key gives
both (computed once per recipient, kept for the pipelined next envelope):

    Message-ID   <digest.EDITION.SUBSCRIBER.MARK@from-domain>
    MAIL FROM    LOCAL+EDITION-SUBSCRIBER-MARK@bounce-domain   (DIGEST_BOUNCE_ADDRESS)

MARK is 80 bits of the MAC in lower-case base32 (local parts may be
lower-cased on the way back), so anyone can read which delivery a bounce
names but only the key's holder can make a mark that verifies: a returned
Message-ID or VERP tag that does not verify names nothing.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re

MARK = r"[a-z2-7]{16}"
MESSAGE_ID = re.compile(rf"<digest\.(\d{{1,18}})\.(\d{{1,18}})\.({MARK})@[^<>\s]+>", re.I)
VERP_TAG = re.compile(rf"(\d{{1,18}})-(\d{{1,18}})-({MARK})", re.I)


@functools.lru_cache(maxsize=8)
def _keyed(key: bytes) -> hmac.HMAC:
    return hmac.new(key, digestmod=hashlib.sha256)


@functools.lru_cache(maxsize=1024)
def mark(key: bytes, edition_id: int, subscriber_id: int) -> str:
    """The MAC naming one delivery (cached: the next envelope and the message share it)."""
    mac = _keyed(key).copy()
    mac.update(f"delivery:{edition_id}:{subscriber_id}".encode())
    return base64.b32encode(mac.digest()[:10]).decode().lower()


def message_id(key: bytes, edition_id: int, subscriber_id: int, domain: str) -> str:
    """The same Message-ID every time for one (edition, subscriber), signed."""
    return f"<digest.{edition_id}.{subscriber_id}.{mark(key, edition_id, subscriber_id)}@{domain}>"


def verp_address(bounce_address: str, key: bytes, edition_id: int, subscriber_id: int) -> str:
    """``local+EDITION-SUBSCRIBER-MARK@domain`` for the bounce address ``local@domain``."""
    local, _, domain = bounce_address.rpartition("@")
    return f"{local}+{edition_id}-{subscriber_id}-{mark(key, edition_id, subscriber_id)}@{domain}"


def _verified(key: bytes, match: re.Match[str] | None) -> tuple[int, int] | None:
    if match is None:
        return None
    edition_text, subscriber_text, signature = match.groups()
    edition_id, subscriber_id = int(edition_text), int(subscriber_text)
    if (edition_text, subscriber_text) != (str(edition_id), str(subscriber_id)):
        return None  # one spelling: "007" is not 7
    expected = mark(key, edition_id, subscriber_id)
    return (edition_id, subscriber_id) if hmac.compare_digest(expected, signature.lower()) else None


def read_message_id(key: bytes, value: str) -> tuple[int, int] | None:
    """(edition, subscriber) of a Message-ID of ours that verifies, else None."""
    return _verified(key, MESSAGE_ID.fullmatch(value.strip()))


def read_verp_tag(key: bytes, tag: str) -> tuple[int, int] | None:
    """(edition, subscriber) of a VERP ``+tag`` that verifies, else None."""
    return _verified(key, VERP_TAG.fullmatch(tag.strip()) if tag.isascii() else None)

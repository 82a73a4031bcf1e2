"""Token versions: version 1 is the spelling tokens always had, later versions name
themselves, every token has one spelling, and no version's signature fits another."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from subscribers.tokens import PURPOSES, make_token, read_token

KEY = b"test-signing-key"
ids = st.integers(min_value=0, max_value=10**15)
versions = st.integers(min_value=1, max_value=10**6)


def test_token_versions_first_version_is_spelt_as_before_versions_existed() -> None:
    mac = hmac.new(KEY, b"unsubscribe:42", hashlib.sha256).digest()[:18]
    before = "42." + base64.urlsafe_b64encode(mac).decode().rstrip("=")
    assert make_token(KEY, "unsubscribe", 42, 1) == before
    assert read_token(KEY, "unsubscribe", before) == (42, 1)


@given(subscriber_id=ids, version=versions, purpose=st.sampled_from(sorted(PURPOSES)))
def test_token_versions_roundtrip(subscriber_id: int, version: int, purpose: str) -> None:
    token = make_token(KEY, purpose, subscriber_id, version)
    assert read_token(KEY, purpose, token) == (subscriber_id, version)
    assert token.replace(".", "").replace("-", "").replace("_", "").isalnum()


@given(subscriber_id=ids, version=versions, other=versions)
def test_token_versions_a_signature_fits_its_own_version_only(
    subscriber_id: int, version: int, other: int
) -> None:
    assume(other != version)
    sig = make_token(KEY, "unsubscribe", subscriber_id, version).rpartition(".")[2]
    head = f"{subscriber_id}" if other == 1 else f"{subscriber_id}.{other}"
    assert read_token(KEY, "unsubscribe", f"{head}.{sig}") is None


def respellings() -> dict[str, str]:
    v1 = make_token(KEY, "unsubscribe", 7)
    v2 = make_token(KEY, "unsubscribe", 7, 2)
    sig1, sig2 = v1.rpartition(".")[2], v2.rpartition(".")[2]
    return {
        "version-1-written-out": f"7.1.{sig1}",
        "version-leading-zero": f"7.02.{sig2}",
        "version-zero": f"7.0.{sig1}",
        "version-empty": f"7..{sig1}",
        "version-sign": f"7.+2.{sig2}",
        "version-superscript": f"7.\u00b2.{sig2}",
        "id-leading-zero": f"07.2.{sig2}",
        "four-parts": f"7.2.2.{sig2}",
        "other-purpose": make_token(KEY, "confirm", 7, 2),
    }


@pytest.mark.parametrize("name", list(respellings()))
def test_token_versions_respelled_or_foreign_token_reads_as_none(name: str) -> None:
    assert read_token(KEY, "unsubscribe", respellings()[name]) is None


def test_token_versions_below_one_are_refused() -> None:
    with pytest.raises(ValueError, match="version"):
        make_token(KEY, "unsubscribe", 7, 0)

"""DKIM signatures: relaxed/relaxed, covering the one-click unsubscribe headers."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import dkim
import pytest
from fixed_edition import fixed_factory

from digest.core.errors import ConfigError
from digest.core.settings import Settings
from digest.mail.dkim import SIGNED_HEADERS, DkimSigner
from digest.mail.message import Recipient

RECIPIENT = Recipient(1, "ada@example.com", "Ada Lovelace")


@pytest.fixture(scope="module")
def key_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """A fresh 2048-bit RSA key (openssl) and the DNS TXT record publishing it."""
    folder = tmp_path_factory.mktemp("dkim")
    key = folder / "dkim.pem"
    subprocess.run(
        ["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
         "-out", str(key)],
        check=True, capture_output=True,
    )  # fmt: skip
    public = subprocess.run(
        ["openssl", "pkey", "-in", str(key), "-pubout", "-outform", "DER"],
        check=True, capture_output=True,
    ).stdout  # fmt: skip
    return key, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


def dns_for(record: bytes):  # type: ignore[no-untyped-def]
    def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"mail2024._domainkey.news.example.org."
        return record

    return dnsfunc


def signed(key: Path) -> bytes:
    signer = DkimSigner("mail2024", "news.example.org", key.read_bytes())
    return fixed_factory(dkim=signer).build(RECIPIENT)


def test_dkim_signature_verifies_offline(key_pair: tuple[Path, bytes]) -> None:
    key, record = key_pair
    message = signed(key)
    assert message.startswith(b"DKIM-Signature: ")
    assert dkim.verify(message, dnsfunc=dns_for(record))


def test_dkim_signature_covers_the_required_headers(key_pair: tuple[Path, bytes]) -> None:
    message = signed(key_pair[0])
    header = message.split(b"\r\n\r\n", 1)[0].split(b"\r\nFrom:", 1)[0]
    unfolded = b"".join(header.split())
    tags = dict(t.split(b"=", 1) for t in unfolded.split(b";")[1:] if b"=" in t)
    assert tags[b"c"] == b"relaxed/relaxed"
    signed_names = {h.lower() for h in tags[b"h"].split(b":")}
    for name in (b"From", b"To", b"Subject", b"Date", b"Message-ID"):
        assert name.lower() in signed_names
    assert b"list-unsubscribe" in signed_names
    assert b"list-unsubscribe-post" in signed_names
    assert set(SIGNED_HEADERS) >= {b"List-Unsubscribe-Post"}


def test_dkim_fails_when_list_unsubscribe_post_is_altered(key_pair: tuple[Path, bytes]) -> None:
    key, record = key_pair
    message = signed(key)
    tampered = message.replace(
        b"List-Unsubscribe-Post: List-Unsubscribe=One-Click",
        b"List-Unsubscribe-Post: List-Unsubscribe=Two-Clicks",
    )
    assert tampered != message
    assert not dkim.verify(tampered, dnsfunc=dns_for(record))


def test_dkim_fails_when_the_unsubscribe_url_is_altered(key_pair: tuple[Path, bytes]) -> None:
    key, record = key_pair
    message = signed(key)
    tampered = message.replace(b"/unsubscribe/1.", b"/unsubscribe/2.", 1)
    assert not dkim.verify(tampered, dnsfunc=dns_for(record))


def test_dkim_signer_reads_a_key_path_or_pem_from_settings(key_pair: tuple[Path, bytes]) -> None:
    key, _ = key_pair
    by_path = DkimSigner.from_settings(
        Settings(dkim_key=str(key), dkim_selector="s1"), "news.example.org"
    )
    by_pem = DkimSigner.from_settings(
        Settings(dkim_key=key.read_text(), dkim_selector="s1", dkim_domain="example.org"), "x"
    )
    assert by_path is not None and by_path.domain == "news.example.org"
    assert by_pem is not None and by_pem.domain == "example.org"
    assert DkimSigner.from_settings(Settings(), "news.example.org") is None


def test_dkim_bad_key_settings_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="DIGEST_DKIM_KEY"):
        DkimSigner.from_settings(Settings(dkim_key=str(tmp_path / "missing.pem")), "x")
    junk = tmp_path / "junk.pem"
    junk.write_text("not a key")
    with pytest.raises(ConfigError, match="DIGEST_DKIM_KEY"):
        DkimSigner.from_settings(Settings(dkim_key=str(junk), dkim_selector="s"), "x")
    with pytest.raises(ConfigError, match="DIGEST_DKIM_SELECTOR"):
        DkimSigner.from_settings(Settings(dkim_key=str(junk)), "x")

"""Optional DKIM signing (dkimpy, relaxed/relaxed) of finished message bytes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import dkim

from digest.core.errors import ConfigError

if TYPE_CHECKING:
    from digest.core.settings import Settings

# dkimpy's default list omits List-Unsubscribe-Post; RFC 8058 needs both list headers signed.
SIGNED_HEADERS = (
    b"From",
    b"To",
    b"Subject",
    b"Date",
    b"Message-ID",
    b"List-Unsubscribe",
    b"List-Unsubscribe-Post",
    b"List-Id",
    b"Feedback-ID",
    b"MIME-Version",
    b"Content-Type",
)


@dataclass(frozen=True)
class DkimSigner:
    selector: str
    domain: str
    key: bytes

    def sign(self, message: bytes) -> bytes:
        """The message with a DKIM-Signature header in front."""
        signature: bytes = dkim.sign(
            message,
            self.selector.encode("ascii"),
            self.domain.encode("ascii"),
            self.key,
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=list(SIGNED_HEADERS),
            linesep=b"\r\n",
        )
        return signature + message

    @classmethod
    def from_settings(cls, settings: Settings, default_domain: str) -> DkimSigner | None:
        """A signer when DIGEST_DKIM_KEY is set (PEM text or a path to a PEM file), else None."""
        if not settings.dkim_key:
            return None
        key_setting = settings.dkim_key.strip()
        if key_setting.startswith("-----BEGIN"):
            key = key_setting.encode("ascii")
        else:
            try:
                key = Path(key_setting).read_bytes()
            except OSError as exc:
                raise ConfigError(
                    "DIGEST_DKIM_KEY", f"cannot read key file: {exc.strerror}"
                ) from None
        if not settings.dkim_selector:
            raise ConfigError("DIGEST_DKIM_SELECTOR", "required when DIGEST_DKIM_KEY is set")
        signer = cls(settings.dkim_selector, settings.dkim_domain or default_domain, key)
        try:
            signer.sign(b"From: a@b\r\nTo: c@d\r\nSubject: key check\r\n\r\nok\r\n")
        except (dkim.DKIMException, ValueError) as exc:
            raise ConfigError("DIGEST_DKIM_KEY", f"not a usable private key: {exc}") from None
        return signer

"""SMTP transport over smtplib: one reused connection, stage-aware failures.

Each message goes MAIL / RCPT / DATA step by step, so a failure is known to be
before acceptance (safe to retry) or after the data went out (outcome unknown).
"""

from __future__ import annotations

import contextlib
import smtplib
import ssl
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from digest.errors import ConfigError, DeliveryError
from digest.transport import NotSent, Rejected, Unknown

SCHEMES = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}


@dataclass(frozen=True)
class SmtpTarget:
    scheme: str
    host: str
    port: int
    username: str | None = None
    password: str | None = None

    @property
    def display(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"


def parse_smtp_url(url: str) -> SmtpTarget:
    """``smtp://``, ``smtp+starttls://`` or ``smtps://[user:pass@]host[:port]``."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise ConfigError(
            "DIGEST_SMTP_URL", f"scheme must be one of {', '.join(SCHEMES)}, got {parts.scheme!r}"
        )
    try:
        port = parts.port or SCHEMES[parts.scheme]
    except ValueError:
        raise ConfigError("DIGEST_SMTP_URL", "port is not a number") from None
    if not parts.hostname:
        raise ConfigError("DIGEST_SMTP_URL", "no host")
    return SmtpTarget(
        scheme=parts.scheme,
        host=parts.hostname,
        port=port,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


class SmtpTransport:
    """Sends over one SMTP connection, opened lazily and reopened after a drop."""

    def __init__(self, target: SmtpTarget, timeout: float = 30.0) -> None:
        self.target = target
        self.timeout = timeout
        self._conn: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        t = self.target
        context = ssl.create_default_context()
        try:
            conn: smtplib.SMTP
            if t.scheme == "smtps":
                conn = smtplib.SMTP_SSL(t.host, t.port, timeout=self.timeout, context=context)
            else:
                conn = smtplib.SMTP(t.host, t.port, timeout=self.timeout)
            conn.ehlo()
            if t.scheme == "smtp+starttls":
                conn.starttls(context=context)
                conn.ehlo()
            if t.username:
                conn.login(t.username, t.password or "")
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(t.display, f"login refused: {exc.smtp_code}") from None
        except (OSError, smtplib.SMTPException) as exc:
            raise NotSent(f"cannot connect to {t.display}: {exc}") from None
        return conn

    def send(self, sender: str, recipient: str, message: bytes) -> None:
        if self._conn is None:
            self._conn = self._connect()
        conn = self._conn
        try:
            code, reply = conn.mail(sender)
            if code != 250:
                self._reset()
                raise Rejected(code, _text(reply))
            code, reply = conn.rcpt(recipient)
            if code not in (250, 251):
                self._reset()
                raise Rejected(code, _text(reply))
        except (OSError, smtplib.SMTPServerDisconnected) as exc:
            self._drop()
            raise NotSent(f"connection lost before DATA: {exc}") from None
        try:
            code, reply = conn.data(message)
        except smtplib.SMTPDataError as exc:  # refused the DATA command itself
            self._reset()
            raise Rejected(exc.smtp_code, _text(exc.smtp_error)) from None
        except (OSError, smtplib.SMTPServerDisconnected) as exc:
            self._drop()
            raise Unknown(f"connection lost during DATA: {exc}") from None
        if code != 250:
            self._reset()
            raise Rejected(code, _text(reply))

    def _reset(self) -> None:
        if self._conn is None:
            return
        try:
            self._conn.rset()
        except (OSError, smtplib.SMTPException):
            self._drop()

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                self._conn.quit()
            self._drop()


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)

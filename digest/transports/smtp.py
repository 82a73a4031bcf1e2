"""SMTP transport over smtplib: a reused connection per thread, stage-aware failures.

Each message goes MAIL / RCPT / DATA step by step (or, when the server
advertises PIPELINING, as one write whose three replies are read in order), so
a failure is known to be before acceptance (safe to retry) or after the data
went out (outcome unknown).
"""

from __future__ import annotations

import contextlib
import smtplib
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from digest.core.errors import ConfigError, DeliveryError
from digest.transports.base import NotSent, Rejected, Unknown

if TYPE_CHECKING:
    from digest.core.settings import Settings

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
            "DIGEST_SMTP_URL",
            f"scheme must be one of {', '.join(SCHEMES)}, maildir or file; got {parts.scheme!r}",
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
    """Sends over SMTP with one reused connection per calling thread.

    Connections open lazily, reopen after a drop, and are replaced after
    ``per_connection`` messages. Thread-safe: the delivery manager's sending
    threads share one transport, each with its own connection.
    """

    def __init__(
        self,
        target: SmtpTarget,
        timeout: float = 30.0,
        *,
        ca_file: str | Path | None = None,
        per_connection: int = 1000,
    ) -> None:
        self.target = target
        self.timeout = timeout
        self.ca_file = str(ca_file) if ca_file else None
        self.per_connection = per_connection
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: set[smtplib.SMTP] = set()

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpTransport:
        return cls(
            parse_smtp_url(settings.smtp_url),
            timeout=settings.smtp_timeout,
            ca_file=settings.smtp_ca_file,
            per_connection=settings.smtp_messages_per_connection,
        )

    def _context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()  # verifies the certificate and host name
        if self.ca_file:
            try:
                context.load_verify_locations(cafile=self.ca_file)
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(
                    "DIGEST_SMTP_CA_FILE", f"cannot load {self.ca_file}: {exc}"
                ) from None
        return context

    def _connect(self) -> smtplib.SMTP:
        t = self.target
        context = self._context() if t.scheme != "smtp" else None
        with self._connect_failures():
            conn: smtplib.SMTP
            if t.scheme == "smtps":
                conn = smtplib.SMTP_SSL(t.host, t.port, timeout=self.timeout, context=context)
            else:
                conn = smtplib.SMTP(t.host, t.port, timeout=self.timeout)
            try:
                conn.ehlo()
                if t.scheme == "smtp+starttls":
                    conn.starttls(context=context)
                    conn.ehlo()
                if t.username:
                    conn.login(t.username, t.password or "")
            except BaseException:
                conn.close()
                raise
        with self._lock:
            self._open.add(conn)
        self._local.count = 0
        return conn

    @contextlib.contextmanager
    def _connect_failures(self) -> Iterator[None]:
        """Connection-time failures as one-line errors (fatal) or NotSent (worth a retry)."""
        t = self.target
        try:
            yield
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(
                t.display, f"login refused: {exc.smtp_code} {_text(exc.smtp_error)}"
            ) from None
        except ssl.SSLCertVerificationError as exc:
            raise DeliveryError(
                t.display, f"certificate not trusted: {exc.verify_message}"
            ) from None
        except smtplib.SMTPConnectError as exc:
            raise Rejected(exc.smtp_code, _text(exc.smtp_error), stage="connect") from None
        except (OSError, smtplib.SMTPException) as exc:
            raise NotSent(f"cannot connect to {t.display}: {exc}") from None

    def _conn(self) -> smtplib.SMTP:
        conn: smtplib.SMTP | None = getattr(self._local, "conn", None)
        if conn is not None and self._local.count >= self.per_connection:
            self._quit(conn)
            conn = None
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    def send(self, sender: str, recipient: str, message: bytes) -> None:
        conn = self._conn()
        self._local.count += 1
        if conn.does_esmtp and "pipelining" in conn.esmtp_features:
            self._send_pipelined(conn, sender, recipient, message)
            return
        try:
            code, reply = conn.mail(sender)
            if code != 250:
                self._reset(conn, code)
                raise Rejected(code, _text(reply), stage="MAIL")
            code, reply = conn.rcpt(recipient)
            if code not in (250, 251):
                self._reset(conn, code)
                raise Rejected(code, _text(reply), stage="RCPT")
        except (OSError, smtplib.SMTPServerDisconnected) as exc:
            self._drop(conn)
            raise NotSent(f"connection lost before DATA: {exc}") from None
        # DATA by hand: a drop before the final dot went out is provably not a delivery;
        # only a drop (or timeout) while awaiting the reply to the dot is unknown.
        try:
            conn.putcmd("data")
            code, reply = conn.getreply()
            if code != 354:
                self._reset(conn, code)
                raise Rejected(code, _text(reply), stage="DATA")
            conn.send(dot_stuffed(message))
        except (OSError, smtplib.SMTPServerDisconnected) as exc:
            self._drop(conn)
            raise NotSent(f"connection lost before the end of DATA: {exc}") from None
        self._final_reply(conn)

    def _send_pipelined(
        self, conn: smtplib.SMTP, sender: str, recipient: str, message: bytes
    ) -> None:
        """RFC 2920: MAIL, RCPT and DATA in one write, then their three replies in order.

        The same stages as the step-by-step path: a refusal of any of the three
        commands, or a drop before the final dot went out, is not a delivery.
        """
        # Quoted as smtplib's mail() and rcpt() do; its putcmd() refuses newlines too.
        mail_from, rcpt_to = smtplib.quoteaddr(sender), smtplib.quoteaddr(recipient)
        if any(c in mail_from + rcpt_to for c in "\r\n"):
            raise ValueError(f"prohibited newline characters in {sender!r} or {recipient!r}")
        commands = f"MAIL FROM:{mail_from}\r\nRCPT TO:{rcpt_to}\r\nDATA\r\n".encode("ascii")
        replies: list[tuple[int, bytes]] = []
        try:
            conn.sock.sendall(commands)  # type: ignore[union-attr]
            for _ in range(3):
                replies.append(conn.getreply())
                if replies[-1][0] == 421:  # the server is closing the connection
                    break
        except (OSError, smtplib.SMTPServerDisconnected) as exc:
            self._drop(conn)
            refused = _first_refusal(replies)
            if refused is not None:  # refused before the drop: still not accepted
                raise refused from None
            raise NotSent(f"connection lost before DATA: {exc}") from None
        refused = _first_refusal(replies)
        if refused is not None:
            if len(replies) == 3 and replies[2][0] == 354:
                # DATA was accepted although MAIL or RCPT was not: end it with an
                # empty message (the server has no valid recipient to deliver to).
                try:
                    conn.sock.sendall(b".\r\n")  # type: ignore[union-attr]
                    conn.getreply()
                except (OSError, smtplib.SMTPServerDisconnected):
                    self._drop(conn)
                    raise refused from None
                if refused.code == 421:
                    self._drop(conn)
            else:
                self._reset(conn, replies[-1][0])
            raise refused
        try:
            conn.sock.sendall(dot_stuffed(message))  # type: ignore[union-attr]
        except OSError as exc:
            self._drop(conn)
            raise NotSent(f"connection lost before the end of DATA: {exc}") from None
        self._final_reply(conn)

    def _final_reply(self, conn: smtplib.SMTP) -> None:
        try:
            code, reply = conn.getreply()
        except (OSError, smtplib.SMTPServerDisconnected) as exc:
            self._drop(conn)
            raise Unknown(f"no reply after the final dot: {exc}") from None
        if code != 250:
            self._reset(conn, code)
            raise Rejected(code, _text(reply), stage="end of DATA")

    def _reset(self, conn: smtplib.SMTP, code: int) -> None:
        if code == 421:  # the server is closing the connection
            self._drop(conn)
            return
        try:
            conn.rset()
        except (OSError, smtplib.SMTPException):
            self._drop(conn)

    def _drop(self, conn: smtplib.SMTP) -> None:
        with self._lock:
            self._open.discard(conn)
        if getattr(self._local, "conn", None) is conn:
            self._local.conn = None
        with contextlib.suppress(OSError):
            conn.close()

    def _quit(self, conn: smtplib.SMTP) -> None:
        with contextlib.suppress(OSError, smtplib.SMTPException):
            conn.quit()
        self._drop(conn)

    def close(self) -> None:
        """Quit every connection (call once the sending threads are done)."""
        with self._lock:
            conns = list(self._open)
        for conn in conns:
            self._quit(conn)


def _first_refusal(replies: list[tuple[int, bytes]]) -> Rejected | None:
    """The first refused reply of a pipelined MAIL / RCPT / DATA, as Rejected."""
    for (code, reply), stage, ok in zip(
        replies, ("MAIL", "RCPT", "DATA"), ((250,), (250, 251), (354,)), strict=False
    ):
        if code not in ok:
            return Rejected(code, _text(reply), stage=stage)
    return None


def dot_stuffed(message: bytes) -> bytes:
    """The DATA payload: lines starting with "." doubled, a final CRLF, then the ending dot."""
    parts = [b"."] if message[:1] == b"." else []
    start = 0
    i = message.find(b"\n.")
    while i >= 0:
        parts += (message[start : i + 1], b".")
        start = i + 1
        i = message.find(b"\n.", start)
    parts.append(message[start:])
    if not message.endswith(b"\r\n"):
        parts.append(b"\r\n")
    parts.append(b".\r\n")
    return b"".join(parts)


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)

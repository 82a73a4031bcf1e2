"""SMTP transport over smtplib: a reused connection per thread, stage-aware failures.

Each message goes MAIL / RCPT / DATA step by step (or, when the server
advertises PIPELINING, as one write whose three replies are read in order), so
a failure is known to be before acceptance (safe to retry) or after the data
went out (outcome unknown). With ``then`` (RFC 2920 across messages) the next
message's MAIL / RCPT / DATA ride in the same write as this message's final
dot, and their replies are read when that next message is sent.

The invariant: ``Unknown`` is raised only once every byte of the final dot
was handed to the socket and its reply did not come; anything found wrong
before that is Rejected, NotSent, Unsendable or a DeliveryError.
"""

from __future__ import annotations

import contextlib
import smtplib
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from digest.core.errors import ConfigError, DeliveryError, DigestError
from digest.transports.base import Envelope, NotSent, Rejected, SendFailure, Unknown
from digest.transports.envelope import Features, check_message, commands, dot_stuffed

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
        # Per connection: the MAIL and RCPT lines (and DATA) written behind the last
        # final dot whose replies are not read yet; the next send must be for them.
        self._ahead: dict[smtplib.SMTP, tuple[bytes, bytes]] = {}

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
        with contextlib.suppress(OSError):  # each write is a whole unit; don't hold its tail
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # type: ignore[union-attr]
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
        except smtplib.SMTPNotSupportedError as exc:  # STARTTLS or AUTH not offered
            raise DeliveryError(t.display, str(exc)) from None
        except smtplib.SMTPConnectError as exc:
            raise Rejected(exc.smtp_code, _text(exc.smtp_error), stage="connect") from None
        except (OSError, smtplib.SMTPException) as exc:
            raise NotSent(f"cannot connect to {t.display}: {exc}") from None

    def _conn(self) -> smtplib.SMTP:
        conn: smtplib.SMTP | None = getattr(self._local, "conn", None)
        if conn is not None and conn.sock is None:  # closed by close() from another thread
            self._drop(conn)
            conn = None
        if conn is not None and self._local.count >= self.per_connection:
            self._quit(conn)
            conn = None
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    def send(
        self, sender: str, recipient: str, message: bytes, *, then: Envelope | None = None
    ) -> None:
        """Send one message; ``then`` (sender, recipient) is the next one on this thread."""
        conn = self._conn()
        offered = Features.of(conn)
        eightbit = not message.isascii()
        with self._lock:
            ahead = self._ahead.pop(conn, None)
        try:
            check_message(recipient, message)
            mail, rcpt = commands(
                sender, recipient, eightbit=eightbit, offered=offered, server=self.target.display
            )
        except (SendFailure, DigestError):
            if ahead is not None:  # the server may be waiting in DATA for that envelope
                self._drop(conn)
            raise
        if ahead is not None and ahead != (mail, rcpt):
            # Not the message announced: hang up rather than feed the server's open
            # DATA anything (the server then discards that transaction), start afresh.
            self._drop(conn)
            conn, ahead = self._conn(), None
        self._local.count += 1
        if ahead is not None:
            self._envelope_replies(conn)
        elif offered.pipelining:
            self._write_envelope(conn, mail + rcpt + b"DATA\r\n")
            self._envelope_replies(conn)
        else:
            self._envelope_step_by_step(conn, mail, rcpt)
        payload = dot_stuffed(message)
        after = self._next_envelope(then, eightbit, offered)
        self._write_data(
            conn, payload + b"".join(after or ()) + (b"DATA\r\n" if after else b""), len(payload)
        )
        self._final_reply(conn)
        if after is not None:
            with self._lock:
                self._ahead[conn] = after

    def _next_envelope(
        self, then: Envelope | None, eightbit: bool, offered: Features
    ) -> tuple[bytes, bytes] | None:
        """The next message's MAIL and RCPT lines, when they may ride behind this dot."""
        if then is None or not offered.pipelining or self._local.count >= self.per_connection:
            return None
        try:
            # Same body declaration as this message; the next send checks it matches.
            return commands(*then, eightbit=eightbit, offered=offered, server=self.target.display)
        except (SendFailure, DigestError):
            return None  # the next send finds the same fault and reports it itself

    def _write_envelope(self, conn: smtplib.SMTP, data: bytes) -> None:
        try:
            conn.sock.sendall(data)  # type: ignore[union-attr]
        except OSError as exc:
            self._drop(conn)
            raise NotSent(f"connection lost before DATA: {exc}") from None

    def _envelope_step_by_step(self, conn: smtplib.SMTP, mail: bytes, rcpt: bytes) -> None:
        """MAIL, RCPT, DATA each awaiting its reply (a server without PIPELINING)."""
        try:
            for line, stage, ok in ((mail, "MAIL", (250,)), (rcpt, "RCPT", (250, 251))):
                conn.send(line)
                code, reply = conn.getreply()
                if code not in ok:
                    self._reset(conn, code)
                    raise Rejected(code, _text(reply), stage=stage)
            conn.putcmd("data")
            code, reply = conn.getreply()
        except (OSError, smtplib.SMTPException) as exc:
            self._drop(conn)
            raise NotSent(f"connection lost before DATA: {exc}") from None
        if code != 354:
            self._reset(conn, code)
            raise Rejected(code, _text(reply), stage="DATA")

    def _envelope_replies(self, conn: smtplib.SMTP) -> None:
        """Read the replies to a pipelined MAIL / RCPT / DATA; return once DATA may follow.

        A refusal of any of the three, or a drop before all three replies came,
        is not a delivery: nothing of the message has been written yet.
        """
        replies: list[tuple[int, bytes]] = []
        try:
            for _ in range(3):
                replies.append(conn.getreply())
                if replies[-1][0] == 421:  # the server is closing the connection
                    break
        except (OSError, smtplib.SMTPException) as exc:
            self._drop(conn)
            refused = _first_refusal(replies)
            if refused is not None:  # refused before the drop: still not accepted
                raise refused from None
            raise NotSent(f"connection lost before DATA: {exc}") from None
        refused = _first_refusal(replies)
        if refused is None:
            return
        if len(replies) == 3 and replies[2][0] == 354:
            # DATA was accepted although MAIL or RCPT was not: end it with an
            # empty message (the server has no valid recipient to deliver to).
            try:
                conn.sock.sendall(b".\r\n")  # type: ignore[union-attr]
                conn.getreply()
            except (OSError, smtplib.SMTPException):
                self._drop(conn)
                raise refused from None
            if refused.code == 421:
                self._drop(conn)
        else:
            self._reset(conn, replies[-1][0])
        raise refused

    def _write_data(self, conn: smtplib.SMTP, data: bytes, dot_end: int) -> None:
        """Write the DATA payload (and what rides behind it); count what the socket took.

        Only when all ``dot_end`` bytes, the final dot included, were handed over
        may the server have the message: a failure before that is NotSent.
        """
        sock = conn.sock
        assert sock is not None
        view, sent = memoryview(data), 0
        try:
            while sent < len(data):
                sent += sock.send(view[sent:])
        except OSError as exc:
            self._drop(conn)
            if sent >= dot_end:
                raise Unknown(f"connection lost after the final dot: {exc}") from None
            raise NotSent(f"connection lost before the end of DATA: {exc}") from None

    def _final_reply(self, conn: smtplib.SMTP) -> None:
        try:
            code, reply = conn.getreply()
        except (OSError, smtplib.SMTPException) as exc:
            self._drop(conn)
            raise Unknown(f"no reply after the final dot: {exc}") from None
        if 200 <= code < 300:
            return
        if not 400 <= code < 600:  # not a reply we can read as a refusal
            self._drop(conn)
            raise Unknown(f"unreadable reply after the final dot: {code} {_text(reply)}")
        if code == 421:  # the server is closing the connection
            self._drop(conn)
        # No RSET: the reply to the dot ends the transaction, and an envelope
        # written behind the dot may already be in the server's hands.
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
            self._ahead.pop(conn, None)
        if getattr(self._local, "conn", None) is conn:
            self._local.conn = None
        with contextlib.suppress(OSError):
            conn.close()

    def _quit(self, conn: smtplib.SMTP) -> None:
        with self._lock:
            waiting = conn in self._ahead  # the server reads a QUIT now as message text
        if not waiting:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                conn.quit()
        self._drop(conn)

    def close(self) -> None:
        """Quit every connection (call once the sending threads are done).

        A connection with a next envelope announced is hung up instead: the
        server discards that unfinished transaction, so nothing is delivered.
        """
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


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)

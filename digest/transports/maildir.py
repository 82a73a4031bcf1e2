"""A transport that delivers each message into a Maildir (``maildir:///path`` or ``file:///path``).

For demos, staging and inspecting what a send would produce without an SMTP
server. Each message is written under ``tmp/`` and renamed into ``new/``: the
rename is atomic, so a message is either delivered whole or not at all, and
a failure to write is always "not sent" (safe to retry). An address that
would break the trace headers (a line break, a NUL, an unencodable
character) is Unsendable, found before anything is written.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import threading
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

from digest.core.errors import ConfigError, DeliveryError
from digest.transports.base import Envelope, NotSent, Unsendable

SCHEMES = ("maildir", "file")
_HOST = socket.gethostname().replace("/", "\\057").replace(":", "\\072")


def parse_maildir_url(url: str) -> Path:
    """``maildir:///abs/dir``, ``maildir://rel/dir`` or ``maildir:rel/dir`` (``file:`` alike)."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise ConfigError("DIGEST_SMTP_URL", f"not a Maildir URL: {parts.scheme!r}")
    path = unquote(parts.netloc + parts.path)
    if not path:
        raise ConfigError("DIGEST_SMTP_URL", "a Maildir URL needs a directory")
    return Path(path)


class MaildirTransport:
    """Writes one file per (message, recipient) into ``path/new``; thread-safe."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.display = f"maildir://{self.path.resolve()}"
        try:
            for sub in ("tmp", "new", "cur"):
                (self.path / sub).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DeliveryError(self.display, f"cannot create the Maildir: {exc}") from None
        self._counter = itertools.count()
        self._lock = threading.Lock()

    def _unique(self) -> str:
        with self._lock:
            n = next(self._counter)
        return f"{time.time_ns()}.P{os.getpid()}Q{n}.{_HOST}"

    def send(
        self, sender: str, recipient: str, message: bytes, *, then: Envelope | None = None
    ) -> None:
        """Write one message; ``then`` is accepted and ignored (nothing to pipeline)."""
        # Maildir files use bare LF line ends; the trace headers say who it was for.
        trace = _trace(self.display, sender, recipient)
        body = message.replace(b"\r\n", b"\n")
        name = self._unique()
        tmp = self.path / "tmp" / name
        try:
            with open(tmp, "xb") as fh:
                fh.write(trace + body)
            os.rename(tmp, self.path / "new" / name)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise NotSent(f"cannot write to {self.display}: {exc}") from None

    def close(self) -> None:
        pass


def _trace(display: str, sender: str, recipient: str) -> bytes:
    """Return-Path and Delivered-To; a bad address never reaches the file."""
    for c in ("\r", "\n", "\0"):
        if c in sender:
            raise DeliveryError(display, f"envelope sender {sender!r} contains a line break or NUL")
        if c in recipient:
            raise Unsendable(recipient, f"address {recipient!r} contains a line break or NUL")
    try:
        sender_line = f"Return-Path: <{sender}>\n".encode()
    except UnicodeEncodeError:
        raise DeliveryError(display, f"envelope sender {sender!r} cannot be encoded") from None
    try:
        return sender_line + f"Delivered-To: {recipient}\n".encode()
    except UnicodeEncodeError:
        raise Unsendable(recipient, f"address {recipient!r} cannot be encoded") from None

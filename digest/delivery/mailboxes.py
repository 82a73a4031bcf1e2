"""The mailbox returned mail arrives in, named by a URL (DIGEST_BOUNCE_MAILBOX).

``maildir:///path``, ``mbox:///path``, ``imaps://user:pass@host[:port]/FOLDER``
(TLS with a verified certificate) or ``imap://`` to a loopback address only.
Each mailbox hands out the messages it holds (``fetch``) and afterwards puts
away those that were handled (``done``), so a scan never sees a message twice:

- Maildir: moved, with the seen flag, into the Maildir++ subfolder
  ``.processed`` (an atomic rename within the Maildir);
- mbox: appended to ``PATH.processed`` (an mbox beside it), then removed from
  the mbox, which the stdlib rewrites through a temporary file and a rename;
  the mbox stays locked from ``fetch`` to ``close``;
- IMAP: flagged ``\\Seen`` and moved to the folder ``Processed`` (created if
  missing; ``MOVE`` where the server has it, else COPY, ``\\Deleted``, EXPUNGE).
"""

from __future__ import annotations

import imaplib
import ipaddress
import mailbox
import os
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from digest.core.errors import ConfigError, MailboxError
from digest.core.settings import redact_url

SETTING = "DIGEST_BOUNCE_MAILBOX"
PROCESSED_FOLDER = "Processed"  # IMAP
PROCESSED_SUBFOLDER = "processed"  # Maildir++ (the directory is .processed)
SCHEMES = "maildir://, mbox://, imaps:// (or imap:// to a loopback address)"


@dataclass(frozen=True)
class Item:
    """One message as the mailbox holds it: where it is (for display and ``done``) and its bytes."""

    ref: str
    data: bytes


class Mailbox(Protocol):
    name: str
    moved_to: str  # where ``done`` puts messages, for people

    def fetch(self) -> list[Item]: ...

    def done(self, items: list[Item]) -> None: ...

    def close(self) -> None: ...


def open_mailbox(url: str, timeout: float = 30.0) -> Mailbox:
    """The mailbox a URL names: ConfigError if it names none, MailboxError if it is unusable."""
    if not url:
        raise ConfigError(SETTING, f"not set (expected {SCHEMES})")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in ("maildir", "mbox"):
        path = Path(unquote(parts.netloc + parts.path))
        return MaildirBox(path) if scheme == "maildir" else MboxBox(path)
    if scheme in ("imap", "imaps"):
        return ImapBox.connect(url, timeout)
    raise ConfigError(SETTING, f"unknown scheme {parts.scheme or url!r} (expected {SCHEMES})")


@contextmanager
def failing(name: str, what: str) -> Iterator[None]:
    """File and mailbox errors in the block become one MailboxError line."""
    try:
        yield
    except (OSError, mailbox.Error) as exc:
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise MailboxError(name, f"{what}: {detail}") from None


# -- Maildir -----------------------------------------------------------------------


class MaildirBox:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = f"maildir://{path}"
        self.moved_to = str(path / f".{PROCESSED_SUBFOLDER}")
        if not all((path / sub).is_dir() for sub in ("new", "cur", "tmp")):
            raise MailboxError(self.name, "not a Maildir (needs new/, cur/ and tmp/)")

    def fetch(self) -> list[Item]:
        items = []
        with failing(self.name, "cannot read"):
            for sub in ("new", "cur"):
                for entry in sorted(os.scandir(self.path / sub), key=lambda e: e.name):
                    if not entry.name.startswith(".") and entry.is_file():
                        items.append(Item(f"{sub}/{entry.name}", Path(entry.path).read_bytes()))
        return items

    def done(self, items: list[Item]) -> None:
        target = self.path / f".{PROCESSED_SUBFOLDER}" / "cur"
        with failing(self.name, f"cannot move messages to {self.moved_to}"):
            mailbox.Maildir(self.path, create=False).add_folder(PROCESSED_SUBFOLDER)  # idempotent
            for item in items:
                base, _, flags = item.ref.split("/", 1)[1].partition(":2,")
                flags = "".join(sorted(set(flags) | {"S"}))
                os.rename(self.path / item.ref, target / f"{base}:2,{flags}")

    def close(self) -> None:
        pass


# -- mbox -----------------------------------------------------------------------------


class MboxBox:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.keys: dict[str, Any] = {}
        self.name = f"mbox://{path}"
        self.moved_to = f"{path}.processed"
        if not path.is_file():
            raise MailboxError(self.name, "no such mbox file")
        with failing(self.name, "cannot open"):
            self.box = mailbox.mbox(path, create=False)
            self.box.lock()

    def fetch(self) -> list[Item]:
        with failing(self.name, "cannot read"):
            self.keys = {str(key): key for key in self.box.iterkeys()}
            return [Item(ref, self.box.get_bytes(key)) for ref, key in self.keys.items()]

    def done(self, items: list[Item]) -> None:
        if not items:
            return
        with failing(self.name, f"cannot move messages to {self.moved_to}"):
            processed = mailbox.mbox(self.moved_to, create=True)
            processed.lock()
            try:
                for item in items:
                    processed.add(item.data)
                processed.flush()  # kept before anything leaves the mbox
            finally:
                processed.unlock()
                processed.close()
            for item in items:
                self.box.remove(self.keys[item.ref])
            self.box.flush()

    def close(self) -> None:
        self.box.unlock()
        self.box.close()


# -- IMAP ------------------------------------------------------------------------------


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ImapBox:
    def __init__(self, name: str, client: imaplib.IMAP4, folder: str) -> None:
        self.name = name
        self.client = client
        self.folder = folder
        self.moved_to = f"folder {PROCESSED_FOLDER}"
        self.can_move = self.uidplus = False

    @classmethod
    def connect(cls, url: str, timeout: float) -> ImapBox:
        parts = urlsplit(url)
        name = redact_url(url)
        host = parts.hostname or ""
        folder = unquote(parts.path.lstrip("/")) or "INBOX"
        if not host:
            raise ConfigError(SETTING, f"no host in {name}")
        if parts.scheme.lower() == "imap" and not _is_loopback(host):
            raise ConfigError(SETTING, f"imap:// without TLS only to a loopback address: {name}")
        try:
            port = parts.port
        except ValueError as exc:
            raise ConfigError(SETTING, f"{name}: {exc}") from None
        try:
            if parts.scheme.lower() == "imaps":
                context = ssl.create_default_context()
                client: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                    host, port or 993, ssl_context=context, timeout=timeout
                )
            else:
                client = imaplib.IMAP4(host, port or 143, timeout=timeout)
        except (OSError, imaplib.IMAP4.error) as exc:  # ssl errors are OSErrors
            raise MailboxError(name, f"cannot connect: {exc}") from None
        box = cls(name, client, folder)
        try:
            box.login(unquote(parts.username or ""), unquote(parts.password or ""))
            box._run(f"no folder {folder!r}", client.select, _quoted(folder))
            # imaplib keeps the greeting's capabilities; the logged-in ones may differ.
            announced = b" ".join(box._run("capability", client.capability)).upper().split()
        except MailboxError:
            box.close()
            raise
        box.can_move, box.uidplus = b"MOVE" in announced, b"UIDPLUS" in announced
        return box

    def login(self, user: str, password: str) -> None:
        try:
            self.client.login(user, password)
        except (OSError, imaplib.IMAP4.error) as exc:
            raise MailboxError(self.name, f"login refused: {_said(exc)}") from None

    def _run(
        self, what: str, method: Callable[..., tuple[str, list[Any]]], *args: str
    ) -> list[Any]:
        """A client call whose answer must be OK; MailboxError naming ``what`` otherwise."""
        try:
            status, data = method(*args)
        except (OSError, imaplib.IMAP4.error) as exc:
            raise MailboxError(self.name, f"{what}: {_said(exc)}") from None
        if status != "OK":
            detail = b" ".join(d for d in data if isinstance(d, bytes)).decode("utf-8", "replace")
            raise MailboxError(self.name, f"{what} ({detail})")
        return data

    def _uid(self, command: str, *args: str) -> list[Any]:
        return self._run(f"UID {command} failed", self.client.uid, command, *args)

    def fetch(self) -> list[Item]:
        found = self._uid("SEARCH", "ALL")
        items = []
        for uid in (found[0] or b"").split():
            data = self._uid("FETCH", uid.decode(), "(BODY.PEEK[])")
            body = next((d[1] for d in data if isinstance(d, tuple)), None)
            if isinstance(body, bytes):
                items.append(Item(uid.decode(), body))
        return items

    def done(self, items: list[Item]) -> None:
        if not items:
            return
        uids = ",".join(item.ref for item in items)
        target = _quoted(PROCESSED_FOLDER)
        if not any(self._run("LIST failed", self.client.list, '""', target)):
            self._run(f"cannot create folder {PROCESSED_FOLDER}", self.client.create, target)
        self._uid("STORE", uids, "+FLAGS.SILENT", r"(\Seen)")
        if self.can_move:
            self._uid("MOVE", uids, target)
            return
        self._uid("COPY", uids, target)
        self._uid("STORE", uids, "+FLAGS.SILENT", r"(\Deleted)")
        if self.uidplus:  # only ours; a plain EXPUNGE takes every deleted message
            self._uid("EXPUNGE", uids)
        else:
            self._run("EXPUNGE failed", self.client.expunge)

    def close(self) -> None:
        try:
            if self.client.state == "SELECTED":
                self.client.close()
            self.client.logout()
        except (OSError, imaplib.IMAP4.error):
            pass


def _quoted(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _said(exc: BaseException) -> str:
    text = str(exc)
    return text[2:-1] if text.startswith(("b'", 'b"')) else text

"""A capture SMTP server (aiosmtpd) that stores every message in a Maildir."""

from __future__ import annotations

import logging
import mailbox
import socket
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

log = logging.getLogger("digest.sink")


class MaildirHandler:
    """Stores one copy per envelope recipient, with Return-Path and Delivered-To added."""

    def __init__(self, maildir: Path) -> None:
        self.maildir = maildir
        maildir.parent.mkdir(parents=True, exist_ok=True)
        self.box = mailbox.Maildir(str(maildir), create=True)
        for sub in ("tmp", "new", "cur"):  # complete a folder that exists but is not a Maildir
            (maildir / sub).mkdir(parents=True, exist_ok=True)
        self.received = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content: bytes = envelope.original_content or envelope.content
        try:
            for rcpt in envelope.rcpt_tos:
                trace = f"Return-Path: <{envelope.mail_from}>\r\nDelivered-To: {rcpt}\r\n"
                self.box.add(trace.encode() + content)
                self.received += 1
        except OSError as exc:
            log.error("cannot store message in %s: %s", self.maildir, exc)
            return "451 4.3.0 cannot store the message"
        return "250 OK stored"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def start_sink(maildir: Path, host: str = "127.0.0.1", port: int | None = None) -> Controller:
    """Start the capture server in a background thread; ``.stop()`` it when done."""
    controller = Controller(
        MaildirHandler(maildir), hostname=host, port=port or free_port(host), ready_timeout=10
    )
    controller.start()
    return controller

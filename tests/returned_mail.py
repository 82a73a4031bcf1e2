"""Returned mail about messages a test really sent: each report built from the
message as the SMTP server received it (its MAIL FROM, To and Message-ID).

The formats are those of ``bounce_samples``: an RFC 3464 DSN to the VERP
return path, an RFC 5965 complaint quoting the message, a qmail bounce
(free text, no DSN) quoting its headers, an RFC 3834 auto-reply, and mail to
the unsubscribe address.
"""

from __future__ import annotations

import json
import mailbox
from dataclasses import dataclass
from email import message_from_bytes
from email.policy import compat32
from pathlib import Path

from conftest import REFERENCE_STORY, Captured, Cli

DOMAIN = "news.example.org"
BOUNCE_ADDRESS = f"bounces@{DOMAIN}"
UNSUBSCRIBE_TO = f"unsubscribe@{DOMAIN}"
# The form Message-IDs had before they were signed: anyone could compute one.
UNSIGNED = "<digest.{edition}.{subscriber}.0123456789ab@" + DOMAIN + ">"
READERS = [f"r{i}@example.net" for i in range(1, 10)]  # one case each (``returned``)
AS_THE_POLICY_SAYS = {
    "r1@example.net": "bounced",
    "r2@example.net": "active",
    "r3@example.net": "complained",
    "r4@example.net": "bounced",
    "r5@example.net": "unsubscribed",
    "r6@example.net": "active",
    "r7@example.net": "active",
    "r8@example.net": "active",
    "r9@example.net": "active",
}


@dataclass(frozen=True)
class Sent:
    mail_from: str
    to: str
    message_id: str
    headers: str  # the message's header block, LF line ends


def crlf(text: str) -> bytes:
    return text.lstrip("\n").replace("\n", "\r\n").encode()


def sent_messages(captured: Captured) -> dict[str, Sent]:
    """Every message the server took, by recipient."""
    found = {}
    for mail_from, rcpts, data in captured.envelopes:
        message = message_from_bytes(data, policy=compat32)
        head = data.split(b"\r\n\r\n", 1)[0].decode().replace("\r\n", "\n")
        found[rcpts[0]] = Sent(mail_from, rcpts[0], str(message["Message-ID"]), head)
    return found


def dsn(sent: Sent, status: str, *, to: str | None = None, serial: str = "1") -> bytes:
    """A Postfix DSN returned to the message's envelope sender (``to`` overrides it)."""
    action = "failed" if status.startswith("5") else "delayed"
    return crlf(f"""
Return-Path: <>
Delivered-To: {to or sent.mail_from}
From: MAILER-DAEMON@mx.example.net (Mail Delivery System)
To: {to or sent.mail_from}
Subject: Undelivered Mail Returned to Sender
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B1"
Message-ID: <dsn-{serial}-{sent.to}@mx.example.net>

--B1
Content-Type: text/plain

This is the mail system at host mx.example.net.

--B1
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net

Final-Recipient: rfc822; {sent.to}
Action: {action}
Status: {status}
Diagnostic-Code: smtp; {status[0]}50 {status} mailbox trouble

--B1--
""")


def complaint(sent: Sent) -> bytes:
    """An ARF report to the feedback address, quoting the message (and its Message-ID)."""
    return crlf(f"""
From: feedback@fbl.example.com
To: fbl@{DOMAIN}
Subject: FW: The Digest
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="B2"
Message-ID: <fbl-{sent.to}@fbl.example.com>

--B2
Content-Type: text/plain

This is an email abuse report.

--B2
Content-Type: message/feedback-report

Feedback-Type: abuse
Version: 1
Original-Rcpt-To: <{sent.to}>

--B2
Content-Type: message/rfc822

{sent.headers}

Hello.
--B2--
""")


def qmail(address: str, headers: str, serial: str) -> bytes:
    """A qmail bounce to the plain bounce address: the address only in its text."""
    return crlf(f"""
From: MAILER-DAEMON@mail.example.biz
To: {BOUNCE_ADDRESS}
Subject: failure notice
Message-ID: <q-{serial}@mail.example.biz>

Hi. This is the qmail-send program at mail.example.biz.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<{address}>:
Sorry, no mailbox here by that name. (#5.1.1)

--- Below this line is a copy of the message.

{headers}
Hello.
""")


def auto_reply(sent: Sent) -> bytes:
    return crlf(f"""
From: {sent.to}
To: {sent.mail_from}
Subject: Out of office
Auto-Submitted: auto-replied
In-Reply-To: {sent.message_id}
Message-ID: <ooo-{sent.to}@example.net>

I am away until Monday.
""")


def unsubscribe_mail(sender: str) -> bytes:
    return crlf(f"""
From: {sender}
To: {UNSUBSCRIBE_TO}
Subject: unsubscribe
Message-ID: <unsub-{sender}>

unsubscribe
""")


def put_in_maildir(path: Path, messages: list[bytes]) -> None:
    box = mailbox.Maildir(path, create=True)
    for data in messages:
        box.add(data)


def statuses(cli: Cli) -> dict[str, str]:
    rows = json.loads(cli("subscribers", "list", "--json").output)
    return {row["email"]: row["status"] for row in rows}


def ids(cli: Cli) -> dict[str, int]:
    rows = json.loads(cli("subscribers", "list", "--json").output)
    return {row["email"]: row["id"] for row in rows}


def send_edition(cli: Cli, story_dir: Path, number: int) -> None:
    """Import a new story, build edition ``number`` and send it."""
    story = story_dir / f"{number:03}.txt"
    story.write_text(f"Headline {number}\nSummary of story {number}.\n", encoding="utf-8")
    cli("stories", "import", str(story))
    assert f"built edition {number}" in cli("edition", "build").output
    cli("send", str(number))


def reference_edition(cli: Cli) -> None:
    cli("stories", "import", str(REFERENCE_STORY))
    cli("edition", "build")
    cli("send", "1")


def returned(captured: Captured) -> list[bytes]:
    """One report per case, about the messages of edition 1."""
    sent = sent_messages(captured)
    r = {i: sent[address] for i, address in enumerate(READERS, 1)}
    forged = r[6].mail_from.replace(r[6].mail_from.split("-")[-1].split("@")[0], "a" * 16)
    return [
        dsn(r[1], "5.1.1"),  # hard, to its VERP address: bounced
        dsn(r[2], "4.2.2"),  # one soft bounce: not yet
        complaint(r[3]),  # complaint quoting the signed Message-ID: complained
        qmail(r[4].to, r[4].headers, "4"),  # free text + a Message-ID that verifies: bounced
        unsubscribe_mail(r[5].to),  # mail to the mailto: unsubscribed
        dsn(r[6], "5.1.1", to=forged),  # a forged VERP token: nothing
        auto_reply(r[7]),  # ignored
        qmail(r[8].to, "Subject: x\n", "8"),  # free text only: stored unverified, nothing
        qmail(r[9].to, f"Message-ID: {UNSIGNED.format(edition=1, subscriber=9)}\n", "9"),
    ]

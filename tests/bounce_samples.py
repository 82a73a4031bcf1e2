"""Returned mail as it arrives, one kind each, about messages digest sent.

Each sample names the delivery it is about by our own Message-ID (what
``digest.mail.return_path.message_id`` builds, signed with ``KEY``: the test
CLI's DIGEST_SECRET_KEY), the way real reports carry it.
"""

from __future__ import annotations

import hashlib

from digest.mail.return_path import message_id

DOMAIN = "news.example.org"
BOUNCE_TO = "bounces@news.example.org"
UNSUBSCRIBE_TO = "unsubscribe@news.example.org"
KEY = b"test-secret"


def ours(edition: int, subscriber: int) -> str:
    return message_id(KEY, edition, subscriber, DOMAIN)


def _crlf(text: str) -> bytes:
    return text.lstrip("\n").replace("\n", "\r\n").encode()


def original_headers(edition: int, subscriber: int, to: str) -> str:
    return f"""From: The Digest <digest@{DOMAIN}>
To: {to}
Subject: The Digest #{edition}
Message-ID: {ours(edition, subscriber)}
List-Unsubscribe: <https://{DOMAIN}/unsubscribe/TOKEN>
"""


def dsn_two_recipients() -> bytes:
    """RFC 3464 from Postfix: one recipient refused for good (5.1.1), one delayed (4.2.2)."""
    return _crlf(f"""
Return-Path: <>
From: MAILER-DAEMON@mx.example.net (Mail Delivery System)
To: {BOUNCE_TO}
Subject: Undelivered Mail Returned to Sender
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B1"
Message-ID: <20260101.ABC@mx.example.net>

--B1
Content-Type: text/plain

This is the mail system at host mx.example.net.

<ada@example.net>: host mx.example.net said: 550 5.1.1 <ada@example.net>: Recipient
    address rejected: User unknown in local recipient table

--B1
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net
Arrival-Date: Thu,  1 Jan 2026 07:00:01 +0000

Final-Recipient: rfc822; ada@example.net
Original-Recipient: rfc822;ada@example.net
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <ada@example.net>: Recipient address rejected:
    User unknown in local recipient table

Final-Recipient: rfc822; grace@example.net
Action: delayed
Status: 4.2.2
Diagnostic-Code: smtp; 452 4.2.2 Mailbox full

--B1
Content-Type: text/rfc822-headers

{original_headers(12, 4, "ada@example.net")}
--B1--
""")


def arf_complaint() -> bytes:
    """RFC 5965 feedback report: the recipient pressed "spam"."""
    return _crlf(f"""
From: feedback@fbl.example.com
To: {BOUNCE_TO}
Subject: FW: The Digest #12
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="B2"
Message-ID: <fbl-1@fbl.example.com>

--B2
Content-Type: text/plain

This is an email abuse report for an email message received from IP 192.0.2.1.

--B2
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: ExampleFBL/1.0
Version: 1
Original-Mail-From: <bounces@{DOMAIN}>
Original-Rcpt-To: <lin@example.com>
Arrival-Date: Thu, 1 Jan 2026 07:00:05 +0000

--B2
Content-Type: message/rfc822

{original_headers(12, 9, "lin@example.com")}
Hello.
--B2--
""")


def qmail_bounce() -> bytes:
    """qmail: no DSN, the failed address as ``<addr>:``, the original below."""
    return _crlf(f"""
From: MAILER-DAEMON@mail.example.biz
To: {BOUNCE_TO}
Subject: failure notice
Message-ID: <q-1@mail.example.biz>

Hi. This is the qmail-send program at mail.example.biz.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<mo@example.biz>:
Sorry, no mailbox here by that name. (#5.1.1)

--- Below this line is a copy of the message.

Return-Path: <{BOUNCE_TO}>
{original_headers(12, 11, "mo@example.biz")}
Hello.
""")


def out_of_office() -> bytes:
    """RFC 3834 auto-reply: to be recognised and ignored."""
    return _crlf(f"""
From: Kim <kim@example.com>
To: {BOUNCE_TO}
Subject: Out of Office: The Digest #12
Auto-Submitted: auto-replied
In-Reply-To: {ours(12, 5)}
Message-ID: <ooo-1@example.com>

I am away until Monday and will read your message when I am back.
""")


def unsubscribe_request() -> bytes:
    """Mail to the List-Unsubscribe mailto: address."""
    return _crlf(f"""
From: Pat <pat@example.com>
To: {UNSUBSCRIBE_TO}
Subject: unsubscribe
Message-ID: <u-1@example.com>

""")


def ordinary_reply() -> bytes:
    """A person answering an edition: no bounce, whatever words it uses."""
    return _crlf(f"""
From: Sam <sam@example.com>
To: {BOUNCE_TO}
Subject: Re: The Digest #12
In-Reply-To: {ours(12, 6)}
References: {ours(12, 6)}
Message-ID: <r-1@example.com>

Thanks! The story about the failed delivery robots was great; my friend
jo@example.com could not stop laughing. Could you send it to her too?
""")


SAMPLES = {
    "dsn.eml": dsn_two_recipients,
    "complaint.eml": arf_complaint,
    "qmail.eml": qmail_bounce,
    "ooo.eml": out_of_office,
    "unsubscribe.eml": unsubscribe_request,
    "reply.eml": ordinary_reply,
}
# What `digest bounces parse --json` says about each: kind, recipients, status.
EXPECTED = {
    "dsn.eml": ("hard", ["ada@example.net", "grace@example.net"], "5.1.1"),
    "complaint.eml": ("complaint", ["lin@example.com"], None),
    "qmail.eml": ("hard", ["mo@example.biz"], "5.1.1"),
    "ooo.eml": ("auto-reply", [], None),
    "unsubscribe.eml": ("unsubscribe-request", ["pat@example.com"], None),
    "reply.eml": ("not-a-bounce", [], None),
}


def _simple(headers: str, body: str) -> bytes:
    mid = f"<s-{hashlib.sha256(headers.encode()).hexdigest()[:12]}@example.com>"
    return _crlf(f"{headers.strip()}\nMessage-ID: {mid}\n\n{body}")


# Automatic answers in the shapes they come in: every one is an auto-reply, never a bounce.
AUTO_REPLIES = {
    "rfc3834.eml": out_of_office(),
    "exchange.eml": _simple(
        f"From: Lee <lee@corp.example.com>\nTo: {BOUNCE_TO}\n"
        "Subject: Automatic reply: The Digest #12\nX-Auto-Response-Suppress: All\n"
        "X-MS-Exchange-Inbox-Rules-Loop: lee@corp.example.com",
        "I am out of the office with limited access to email. Mail to lee@corp.example.com\n"
        "is not delivered to me until the 5th; urgent matters: desk@corp.example.com.\n",
    ),
    "vacation.eml": _simple(
        f"From: Ola <ola@example.no>\nTo: {BOUNCE_TO}\nSubject: away from my mail\n"
        "Precedence: junk\nX-Autoreply: yes",
        "I will not read my mail before 12 January. Your mail regarding\n"
        '"The Digest #12" will be read when I return.\n',
    ),
    "abwesenheit.eml": _simple(
        f"From: Uwe <uwe@example.de>\nTo: {BOUNCE_TO}\n"
        "Subject: Abwesenheitsnotiz: The Digest #12\nAuto-Submitted: auto-generated",
        "Ich bin bis 10. Januar nicht im Büro. Ihre Nachricht wird nicht weitergeleitet.\n",
    ),
}

# People writing back: never a bounce, whatever words they use.
REPLIES = {
    "reply.eml": ordinary_reply(),
    "reply-undeliverable.eml": _simple(
        f"From: Ann <ann@example.com>\nTo: {BOUNCE_TO}\n"
        "Subject: Re: Undelivered Mail Returned to Sender\nIn-Reply-To: <x@mx.example.net>",
        "Why did I get this? My colleague bob@example.com says your digest bounced:\n"
        "550 5.1.1 user unknown. Could you check the address?\n",
    ),
    "reply-from-postmaster.eml": _simple(
        f"From: Postmaster <postmaster@example.com>\nTo: {BOUNCE_TO}\n"
        f"Subject: Re: The Digest #12\nIn-Reply-To: {ours(12, 8)}",
        "We are the postmasters of example.com: please stop sending to\n"
        "old-list@example.com, that address does not exist any more.\n",
    ),
    "reply-forward.eml": _simple(
        f"From: Joe <joe@example.com>\nTo: {BOUNCE_TO}\nSubject: Fwd: The Digest #12",
        "---------- Forwarded message ---------\nFrom: The Digest <digest@news.example.org>\n"
        "To: joe@example.com\n\nHave a look at the second story, jane@example.com.\n",
    ),
    "reply-unsubscribe-words.eml": _simple(
        f"From: Max <max@example.com>\nTo: {BOUNCE_TO}\nSubject: my old address",
        "Please stop mailing old@example.com, that mailbox does not exist any more\n"
        "and mail to it fails. Thanks, Max\n",
    ),
}

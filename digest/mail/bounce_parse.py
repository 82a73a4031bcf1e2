"""What a message that came back to us is: a bounce, a complaint, an auto-reply,
an unsubscribe request, or none of these. Pure: bytes in, a ``Returned`` out.

The standard formats are read by their structure: RFC 3464 delivery status
notifications (every recipient block of the ``message/delivery-status`` part),
RFC 5965 ARF complaints (``message/feedback-report``) and RFC 3834
auto-replies (``Auto-Submitted`` and its older cousins). Bounces that follow no
standard (qmail, old Exchange, Yahoo, Postfix without DSN, ...) are recognised
by who sent them and how they read, and their recipients found in the report
text (``digest.mail.bounce_text``). Whatever the format, the Message-IDs of
our own messages found in the returned part name the delivery they came from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from email import message_from_bytes
from email.message import Message
from email.policy import compat32
from email.utils import getaddresses, parseaddr

from digest.mail import bounce_text
from digest.mail.bounce_text import header
from digest.mail.return_path import MESSAGE_ID

HARD = "hard"
SOFT = "soft"
COMPLAINT = "complaint"
AUTO_REPLY = "auto-reply"
UNSUBSCRIBE_REQUEST = "unsubscribe-request"
NOT_A_BOUNCE = "not-a-bounce"
KINDS = (HARD, SOFT, COMPLAINT, AUTO_REPLY, UNSUBSCRIBE_REQUEST, NOT_A_BOUNCE)

# What digest.mail.return_path.message_id() builds: <digest.EDITION.SUBSCRIBER.MARK@domain>;
# whether the MARK verifies is the policy's question (it holds the key).
OUR_MESSAGE_ID = MESSAGE_ID
RETURNED_TYPES = ("text/rfc822-headers", "message/rfc822-headers")  # headers only
ENVELOPE_HEADERS = ("Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "To")
STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")


class NotAnEmail(ValueError):
    """The bytes are not an email message (no header block at all)."""


@dataclass(frozen=True)
class Failure:
    """One recipient a report is about (for an unsubscribe request: who asks)."""

    address: str
    kind: str  # HARD or SOFT (or COMPLAINT for a feedback report)
    status: str | None = None
    diagnostic: str = ""


@dataclass(frozen=True)
class Returned:
    """A parsed message: its kind and everything a policy needs to act on it."""

    kind: str
    failures: tuple[Failure, ...] = ()
    message_ids: tuple[str, ...] = ()  # our Message-IDs found in the returned message
    verp_tokens: tuple[str, ...] = ()  # the +tags of the address the report came to
    feedback_type: str = ""  # ARF Feedback-Type (abuse, fraud, ...)
    list_unsubscribe: str = ""  # the returned message's List-Unsubscribe (complaints)
    sender: str = ""  # From of the message itself (the asker of an unsubscribe request)

    @property
    def recipients(self) -> list[str]:
        seen: dict[str, None] = {}
        for failure in self.failures:
            seen.setdefault(failure.address, None)
        return list(seen)

    @property
    def status(self) -> str | None:
        """The status code of the first recipient of the message's kind (a hard one in a
        report that is hard), else of any."""
        ranked = sorted((f for f in self.failures if f.status), key=lambda f: f.kind != self.kind)
        return ranked[0].status if ranked else None

    @property
    def diagnostic(self) -> str:
        return next((f.diagnostic for f in self.failures if f.diagnostic), "")

    @property
    def deliveries(self) -> list[tuple[int, int]]:
        """(edition id, subscriber id) each of our Message-IDs found names (unverified)."""
        found = [delivery_of(mid) for mid in self.message_ids]
        return [delivery for delivery in found if delivery is not None]


def delivery_of(message_id: str) -> tuple[int, int] | None:
    """The (edition, subscriber) a Message-ID in our form names (unverified), or None."""
    match = OUR_MESSAGE_ID.fullmatch(message_id.strip())
    return (int(match.group(1)), int(match.group(2))) if match else None


def load(data: bytes) -> Message:
    """Parse bytes as a message; NotAnEmail when there is no header block."""
    head = data.lstrip()[:2000].split(b"\n", 1)[0]
    if data.startswith(b"From "):  # an mbox separator line before the headers
        head = data.split(b"\n", 1)[1][:2000].split(b"\n", 1)[0] if b"\n" in data else b""
    if not re.match(rb"^[!-9;-~]+:", head):
        raise NotAnEmail("not an email message (no header lines)")
    message = message_from_bytes(data, policy=compat32)
    if not message.keys():
        raise NotAnEmail("not an email message (no header lines)")
    return message


def parse(data: bytes, *, unsubscribe_address: str = "") -> Returned:
    """Classify one message (bytes as read from a file or mailbox)."""
    return classify(load(data), unsubscribe_address=unsubscribe_address)


def classify(message: Message, *, unsubscribe_address: str = "") -> Returned:
    """Classify one parsed message; ``unsubscribe_address`` is the List-Unsubscribe mailto."""
    base = Returned(
        NOT_A_BOUNCE,
        message_ids=tuple(our_message_ids(message)),
        verp_tokens=tuple(verp_tokens(message)),
        sender=parseaddr(header(message, "From"))[1],
    )
    report = _part_of_type(message, "message/feedback-report")
    if report is not None:
        return _complaint(message, report, base)
    status_part = _part_of_type(message, "message/delivery-status")
    failures = _dsn_failures(status_part) if status_part is not None else []
    if status_part is not None and not failures and _dsn_only_success(status_part):
        return base  # a delivered/relayed notice: nothing failed
    if not failures:
        if AUTO_REPLY_SUBJECT.match(header(message, "Subject")):
            return replace(base, kind=AUTO_REPLY)  # "Out of office", even from a postmaster
        if bounce_text.looks_like_bounce(message):
            failures = _text_failures(message) or _returned_recipient(message)
            if not failures and not is_auto_reply(message):
                # It names no recipient we can read: our Message-ID still names the delivery.
                return replace(base, kind=_text_kind(message))
    if failures:
        kind = HARD if any(f.kind == HARD for f in failures) else SOFT
        return replace(base, kind=kind, failures=tuple(failures))
    if is_auto_reply(message):
        return replace(base, kind=AUTO_REPLY)
    if unsubscribe_address and _addressed_to(message, unsubscribe_address):
        asker = (Failure(base.sender, UNSUBSCRIBE_REQUEST),) if base.sender else ()
        return replace(base, kind=UNSUBSCRIBE_REQUEST, failures=asker)
    return base


# -- headers and parts ---------------------------------------------------------


def _part_of_type(message: Message, content_type: str) -> Message | None:
    for part in message.walk():
        if part.get_content_type() == content_type:
            return part
    return None


def returned_headers(message: Message) -> list[Message]:
    """The headers of the message(s) that came back inside this one."""
    found: list[Message] = []
    for part in message.walk():
        ctype = part.get_content_type()
        if ctype == "message/rfc822":
            payload = part.get_payload()
            if isinstance(payload, list):
                found += [p for p in payload if isinstance(p, Message)]
        elif ctype in RETURNED_TYPES:
            raw = part.get_payload(decode=True)
            if isinstance(raw, bytes):
                found.append(message_from_bytes(raw.lstrip(), policy=compat32))
    return found


def our_message_ids(message: Message) -> list[str]:
    """Our Message-IDs in the returned part or In-Reply-To/References, else in the text."""
    own = header(message, "Message-ID")
    found: dict[str, None] = {}
    for inner in returned_headers(message):
        for match in OUR_MESSAGE_ID.finditer(header(inner, "Message-ID")):
            found.setdefault(match.group(0), None)
    for name in ("In-Reply-To", "References"):  # replies and auto-replies name it here
        for match in OUR_MESSAGE_ID.finditer(header(message, name)):
            found.setdefault(match.group(0), None)
    if not found:
        # Reports that quote the original as text: any of our ids in the body.
        for match in OUR_MESSAGE_ID.finditer(bounce_text.all_text(message)):
            if match.group(0) != own:
                found.setdefault(match.group(0), None)
    return list(found)


def verp_tokens(message: Message) -> list[str]:
    """The ``+tag`` of the addresses this report was delivered to (a VERP return path)."""
    tokens: dict[str, None] = {}
    for name in ENVELOPE_HEADERS:
        for _, address in getaddresses(message.get_all(name, [])):
            local = address.rpartition("@")[0]
            if "+" in local:
                tokens.setdefault(local.split("+", 1)[1], None)
    return list(tokens)


def _addressed_to(message: Message, address: str) -> bool:
    wanted = address.strip().lower()
    for name in (*ENVELOPE_HEADERS, "Cc"):
        for _, found in getaddresses(message.get_all(name, [])):
            if found.strip().lower() == wanted:
                return True
    return False


def _text_kind(message: Message) -> str:
    return SOFT if bounce_text.reads_transient(message) else HARD


def _text_failures(message: Message) -> list[Failure]:
    return [Failure(*found) for found in bounce_text.failures(message)]


def _returned_recipient(message: Message) -> list[Failure]:
    """The one To of the returned message: what a report that names nobody was about."""
    for inner in returned_headers(message):
        addresses = [a for _, a in getaddresses(inner.get_all("To", [])) if "@" in a]
        if len(addresses) == 1:
            return [Failure(addresses[0], _text_kind(message))]
    return []


# -- RFC 3464 --------------------------------------------------------------------


def _status_blocks(part: Message) -> list[Message]:
    """The field groups of a delivery-status part (per-message first, then per-recipient)."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Message)]
    raw = part.get_payload(decode=True)
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(payload)
    groups = re.split(r"\n[ \t]*\n", text.replace("\r\n", "\n").strip())
    return [message_from_bytes(g.strip().encode() + b"\n", policy=compat32) for g in groups]


def _address_field(value: str) -> str:
    """``rfc822; user@host`` -> ``user@host``."""
    _, _, address = value.partition(";") if ";" in value else ("", "", value)
    address = address.strip().strip("<>").strip()
    return address if "@" in address else ""


def _dsn_failures(part: Message) -> list[Failure]:
    failures: list[Failure] = []
    for block in _status_blocks(part):
        address = _address_field(header(block, "Original-Recipient")) or _address_field(
            header(block, "Final-Recipient")
        )
        action = header(block, "Action").lower().split(" ")[0]
        if not address or action not in ("failed", "delayed"):
            continue
        found = STATUS.search(header(block, "Status"))
        status = found.group(0) if found else None
        diagnostic = header(block, "Diagnostic-Code")
        diagnostic = diagnostic.partition(";")[2].strip() if ";" in diagnostic else diagnostic
        soft = action == "delayed" or (status is not None and status.startswith("4"))
        failures.append(Failure(address, SOFT if soft else HARD, status, diagnostic))
    return failures


def _dsn_only_success(part: Message) -> bool:
    actions = [header(b, "Action").lower() for b in _status_blocks(part) if header(b, "Action")]
    return bool(actions) and all(a in ("delivered", "relayed", "expanded") for a in actions)


# -- RFC 5965 --------------------------------------------------------------------


def _complaint(message: Message, report: Message, base: Returned) -> Returned:
    fields = _status_blocks(report)
    first = fields[0] if fields else Message()
    returned = returned_headers(message)
    rcpt_to = first.get_all("Original-Rcpt-To", [])
    recipients = [_address_field(str(v)) or str(v).strip("<> ") for v in rcpt_to]
    if not recipients:
        recipients = [a for r in returned for _, a in getaddresses(r.get_all("To", []))]
    return replace(
        base,
        kind=COMPLAINT,
        failures=tuple(Failure(a, COMPLAINT) for a in recipients if "@" in a),
        feedback_type=header(first, "Feedback-Type").lower(),
        list_unsubscribe=next((header(r, "List-Unsubscribe") for r in returned), ""),
    )


# -- RFC 3834 --------------------------------------------------------------------

AUTO_REPLY_SUBJECT = re.compile(
    r"^(auto(matic)?[ -]?(reply|response|antwort)|out of (the )?office|abwesenheit|"
    r"absence|vacation|away from|r[ée]ponse automatique|on leave)",
    re.I,
)


def is_auto_reply(message: Message) -> bool:
    """Auto-Submitted (RFC 3834) or one of the older marks of an automatic answer."""
    auto = header(message, "Auto-Submitted").lower()
    if auto and not auto.startswith("no"):
        return True
    if any(message.get(h) for h in ("X-Autoreply", "X-Autorespond")):
        return True
    if header(message, "Precedence").lower() in ("auto_reply", "auto-reply"):
        return True
    return bool(AUTO_REPLY_SUBJECT.match(header(message, "Subject")))

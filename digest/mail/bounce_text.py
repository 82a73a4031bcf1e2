"""Bounces that follow no standard, read from their text.

qmail, old Exchange, Yahoo, GroupWise, Postfix without DSN and the rest each
word their report differently, but they share a shape: a notice from a mail
daemon, a report naming the addresses that failed (``<user@host>:``, a line of
its own, or a sentence such as "did not reach the following recipient(s)"),
then the returned message. This module finds that report (the text before the
returned message), the addresses it names and, when it gives one, a status
code. Pure functions over an already parsed message.
"""

from __future__ import annotations

import re
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses, parseaddr

LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
ADDRESS = rf"[A-Za-z0-9!#$%&'*+/=?^_`{{|}}~.-]+@(?:\[[0-9.]+\]|{LABEL}(?:\.{LABEL})+)"
ADDRESS_RE = re.compile(ADDRESS)
# Who sends reports: the local part of the sender (whole), or its display name (start).
DAEMON_LOCAL = re.compile(
    r"(mailer[-_]?daemon|postmaster|mail[-_]?daemon|mdaemon|smtp|mmdf|root|exchange|daemon|"
    r"bounces?|ndr|nobody|mail[-_]?(delivery|system|gateway|server)|mailer)",
    re.I,
)
DAEMON_NAME = re.compile(
    r"^(mailer[- ]daemon|postmaster|mail delivery|mail administrator|system administrator|"
    r"internet mail|mail server|mail system)",
    re.I,
)
BOUNCE_SUBJECT = re.compile(
    r"(undeliver|undelivered|delivery (status|failure|notification|problem|report|has failed)|"
    r"failure notice|failed delivery|delivery fail|returned mail|return(ed)? to sender|"
    r"mail delivery|could not be delivered|non[- ]?delivery|nondeliverable|"
    r"permanent (delivery )?(error|failure)|unable to deliver|not delivered|"
    r"failure delivery|user unknown|mail system error|message status|bounced?|"
    r"delivery notification|error sending|notice: mail|unknown (user|recipient)|"
    r"rejected|mail failure|message you sent)",
    re.I,
)
FORWARD = ("fw", "wg", "tr")
REPLY_SUBJECT = re.compile(r"^\s*(re|aw|sv|antw|fwd?|wg|tr|rv)\s*(\[\d+\])?\s*:", re.I)
# Where the report stops and the returned message begins.
RETURNED_MARKERS = re.compile(
    r"^\s*(-{2,}.*(below this line|original message|copy of|unsent message|returned message|"
    r"message headers|header of the original|rfc822)|"
    r"original message follows|the original message follows|original message as received|"
    r"-+ ?returned mail ?-+|received: from |"
    r"-+ ?original message ?-+|your message reads|the text of (your|the) message|"
    r"the headers of (your|the) message|"
    r"\*{3,} ?returned message|------ this is a copy of the message|"
    r"transcript of session follows\.?$)",
    re.I | re.M,
)
TRANSIENT = re.compile(
    r"(will (continue to )?(retry|try again|be retried)|delayed|still trying|"
    r"has not yet been delivered|warning: message|temporar(y|ily)|"
    r"not been delivered yet|will keep trying|transient|postponed|continue to (try|attempt)|"
    r"attempts will continue|advisory|delivery warning)",
    re.I,
)
NOT_RECIPIENTS = re.compile(
    r"(postmaster|mailer-daemon|mail-daemon|mdaemon|abuse|hostmaster|webmaster)@", re.I
)


def decoded(part: Message) -> str:
    raw = part.get_payload(decode=True)
    if not isinstance(raw, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return raw.decode(charset, "replace")
    except LookupError:
        return raw.decode("utf-8", "replace")


def _text_parts(message: Message, inside_returned: bool = False) -> list[tuple[str, bool]]:
    """(text, inside a returned message) of every text part, in order."""
    found: list[tuple[str, bool]] = []
    payload = message.get_payload()
    ctype = message.get_content_type()
    if isinstance(payload, list):
        inner = inside_returned or ctype == "message/rfc822"
        for part in payload:
            if isinstance(part, Message):
                found += _text_parts(part, inner)
    elif ctype.startswith("text/") or ctype in ("message/delivery-status",):
        text = decoded(message)
        if ctype == "text/html":
            text = re.sub(r"<br\s*/?>", "\n", text, flags=re.I)
            text = re.sub(r"<[^>]+>", " ", text).replace("&nbsp;", " ")
            text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
        returned = inside_returned or ctype in ("text/rfc822-headers",)
        found.append((text, returned))
    return found


def all_text(message: Message) -> str:
    return "\n".join(text for text, _ in _text_parts(message))


def report_text(message: Message) -> str:
    """The report: the text before the returned message."""
    texts = [text for text, returned in _text_parts(message) if not returned]
    text = "\n".join(texts).replace("\r\n", "\n")
    marker = RETURNED_MARKERS.search(text)
    return text[: marker.start()] if marker else text


def header(message: Message, name: str) -> str:
    """A header's value, RFC 2047 decoded, unfolded; "" when absent or undecodable."""
    value = message.get(name)
    if value is None:
        return ""
    try:
        text = str(make_header(decode_header(str(value))))
    except (ValueError, LookupError, UnicodeError):
        text = str(value)
    return " ".join(text.split())


def reads_transient(message: Message) -> bool:
    """The report speaks of a delay or of trying again."""
    return bool(TRANSIENT.search(report_text(message)))


def looks_like_bounce(message: Message) -> bool:
    """Sent by a mail daemon, or worded like a delivery failure report, and no reply."""
    subject = header(message, "Subject")
    reply = REPLY_SUBJECT.match(subject)
    if reply and (reply.group(1).lower().startswith(FORWARD) or _answers(message)):
        return False  # a person answering or forwarding, whatever the subject quotes
    name, address = parseaddr(message.get("From", ""))
    local = address.partition("@")[0]
    if not address or DAEMON_LOCAL.fullmatch(local) or DAEMON_NAME.match(name or ""):
        return True
    return bool(BOUNCE_SUBJECT.search(subject))


def _answers(message: Message) -> bool:
    return bool(message.get("In-Reply-To") or message.get("References"))


def _own_addresses(message: Message) -> set[str]:
    """Addresses of the report itself (its sender and recipients): never the bounced ones."""
    names = ("From", "To", "Cc", "Reply-To", "Sender", "Return-Path", "Delivered-To")
    return {
        a.lower() for _, a in getaddresses([str(v) for n in names for v in message.get_all(n, [])])
    }


# Words of a report near the addresses that failed.
FAILURE_CONTEXT = re.compile(
    r"(following (e-?mail )?(address|recipient|destination|user)|failed recipient|"
    r"did not reach|not (be )?delivered|could not deliver|undeliverable|unable to deliver|"
    r"permanent|fatal|user unknown|unknown (user|recipient|address)|no such|not found|"
    r"does not exist|doesn't exist|mailbox|rejected|refused|invalid|not accepting|"
    r"not (exactly )?match|expanded from|delivery failed|failed|not known|no longer|quota|"
    r"over ?quota|disabled|inactive|bad (address|destination)|not listed|error|"
    r"\b5\d\d\b|\b4\d\d\b)",
    re.I,
)
QUOTED_HEADER = re.compile(
    r"^\s*>?\s*(to|cc|bcc|from|subject|sent|date|reply-to|message-id|return-path|sender|"
    r"received|x-[\w-]+|errors-to|list-[\w-]+|delivered-to|in-reply-to|references)\s*:",
    re.I,
)
QUOTED_TO = re.compile(r"^\s*>?\s*to\s*:", re.I)
SENDER_BEFORE = re.compile(r"(?<!generated )(?<!expanded )\bfrom\s*<?$", re.I)
ROUTE_PREFIX = re.compile(r"^(smtp|rfc822|rfc-822|mailto)[=:]", re.I)
BARE_NAME = re.compile(r"^\s*<?([A-Za-z0-9][A-Za-z0-9._-]*)>?\s*:?\s*$")


def _candidates(text: str, own: set[str], quoted_to: bool = False) -> list[tuple[str, bool, str]]:
    """(address, in a failure context, the lines around it) in report order.

    ``quoted_to``: also the To: lines of a quoted original (for reports that say only
    "I wasn't able to deliver the following message")."""
    lines = text.split("\n")
    found: list[tuple[str, bool, str]] = []
    for number, line in enumerate(lines):
        if QUOTED_HEADER.match(line) and not (quoted_to and QUOTED_TO.match(line)):
            continue  # a quoted header of the original message, not a report line
        for match in ADDRESS_RE.finditer(line):
            address = ROUTE_PREFIX.sub("", match.group(0).strip(".'\"`"))
            if address.lower() in own or NOT_RECIPIENTS.match(address) or "@" not in address:
                continue
            if SENDER_BEFORE.search(line[: match.start()]):
                continue  # "not accepting mail from <list address>": the sender, not a recipient
            before = " ".join(lines[max(0, number - 3) : number])
            leads = not line[: match.start()].strip(" \t<>\"'-*:")
            strong = leads or bool(FAILURE_CONTEXT.search(line + " " + before))
            around = " ".join(" ".join(lines[number : number + 3]).split())
            found.append((address, strong, around))
    return found


def _bare_names(text: str, domain: str) -> list[tuple[str, bool, str]]:
    """Local parts on lines of their own after "the following recipients" (AOL and kin)."""
    found = []
    lines = text.split("\n")
    for number, line in enumerate(lines):
        if re.search(r"following (recipient|address|user)", line, re.I) and domain:
            for later in lines[number + 1 : number + 6]:
                bare = BARE_NAME.match(later)
                if bare:
                    found.append((f"{bare.group(1)}@{domain}", True, line.strip()))
                elif later.strip():
                    break
    return found


def failures(message: Message) -> list[tuple[str, str, str | None, str]]:
    """(address, hard|soft, status, diagnostic) for each address the report names."""
    text = report_text(message)
    own = _own_addresses(message)
    candidates = _candidates(text, own)
    if not candidates:
        sender_domain = parseaddr(message.get("From", ""))[1].rpartition("@")[2].lower()
        candidates = _bare_names(text, sender_domain) or _candidates(text, own, quoted_to=True)
    strong = [c for c in candidates if c[1]] or candidates
    found: dict[str, tuple[str, str]] = {}
    for address, _, around in strong:
        found.setdefault(address.lower(), (address, around))
    transient = bool(TRANSIENT.search(text))
    result = []
    for address, around in found.values():
        status = _status(around) or _status(text)
        soft = status.startswith("4") if status else transient
        result.append((address, "soft" if soft else "hard", status, around[:500]))
    return result


def _status(text: str) -> str | None:
    found = re.search(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b", text)
    if found:
        return found.group(0)
    smtp = re.search(r"\b([45])[0-5]\d\b(?=[ -])", text)
    if smtp:
        return f"{smtp.group(1)}.0.0"
    return None

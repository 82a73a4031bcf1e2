"""MIME byte templates: one edition's message precompiled once, personalized per recipient.

The message (headers, ``multipart/alternative`` boundaries, quoted-printable
text and HTML parts) is encoded once into a list of static byte chunks with
named slots between them. Per recipient only the slot values are encoded and
the chunks joined; no ``EmailMessage`` is built.

Quoted-printable soft line breaks never split a slot: every static chunk is
encoded on its own and ends at a line boundary (a hard break, or a soft break
we add), and every slot value is encoded on its own lines, so each line stays
within 76 characters whatever the recipient's values are.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email import policy
from email.quoprimime import body_encode
from html import escape

LINE = 76
CRLF = b"\r\n"
SOFT_BREAK = b"=\r\n"
MAX_HEADER_LINE = 998
_UNSAFE_HEADER = re.compile(r"[\r\n\0]")
_LINE_BREAKING = re.compile("[\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
# ASCII a QP line may carry as-is (no "=", no control characters, no trailing-space trouble).
_QP_SAFE = re.compile(r"[!-<>-~][ !-<>-~]*")
_ATEXT_PHRASE = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]+")
# Printable, no < > or space; only the local part may be non-ASCII (SMTPUTF8, RFC 6532).
_ADDR_SPEC = re.compile(r"[!-;=?-~\u00a0-\ud7ff\ue000-\U0010ffff]+@[!-;=?-~]+")


class HeaderValueError(ValueError):
    """A value cannot be put into a header (CR, LF, NUL, or malformed); names the header."""

    def __init__(self, header: str, problem: str) -> None:
        self.header = header
        super().__init__(f"{header}: {problem}")


def check_header_value(name: str, value: str) -> str:
    """``value`` unchanged, or HeaderValueError when it would break out of its header."""
    if _UNSAFE_HEADER.search(value):
        raise HeaderValueError(name, "CR, LF and NUL are not allowed in a header")
    return value


def fold_header(name: str, value: str) -> bytes:
    """One complete header (``Name: value`` + CRLF), folded and RFC 2047-encoded as needed."""
    check_header_value(name, value)
    if _LINE_BREAKING.search(value):  # the email package would split the header there
        raise HeaderValueError(name, "contains a line-breaking character")
    # As EmailMessage does: a parsed header object folds and encodes itself.
    header = policy.SMTP.header_factory(name, value)
    folded = header.fold(policy=policy.SMTP).encode("ascii")
    if any(len(line) > MAX_HEADER_LINE for line in folded.split(CRLF)):
        raise HeaderValueError(name, "too long for a header line")
    return folded


def encode_display_name(name: str) -> str:
    """A display name as an atom phrase, a quoted string, or RFC 2047 encoded words."""
    name = " ".join(name.split())
    if not name:
        return ""
    if name.isascii():
        if _ATEXT_PHRASE.fullmatch(name):
            return name
        quoted = name.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{quoted}"'
    return encoded_words(name)


def encoded_words(text: str) -> str:
    """RFC 2047 base64 encoded words, each within 75 characters, whole characters only."""
    words: list[str] = []
    current = ""
    for char in text:
        # 4 base64 characters per 3 bytes; "=?utf-8?b?" + "?=" take 12 of the 75.
        if (len((current + char).encode("utf-8")) + 2) // 3 * 4 > 75 - 12:
            words.append(current)
            current = char
        else:
            current += char
    words.append(current)
    return "\r\n ".join(
        "=?utf-8?b?" + base64.b64encode(word.encode("utf-8")).decode("ascii") + "?="
        for word in words
    )


def format_address(name: str, addr: str) -> str:
    """``Name <addr>`` for a To header; HeaderValueError for anything unsafe.

    ``addr`` as it goes on the wire: an IDN domain in its ASCII form; a non-ASCII
    local part stays UTF-8 (the message then needs SMTPUTF8, which the transport checks).
    """
    check_header_value("To", name)
    if not _ADDR_SPEC.fullmatch(addr):
        raise HeaderValueError("To", f"not an address this message can carry: {addr!r}")
    phrase = encode_display_name(name)
    if not phrase:
        return addr
    if len(phrase.rsplit("\r\n", 1)[-1]) + len(addr) + 7 > 78:
        return f"{phrase}\r\n <{addr}>"
    return f"{phrase} <{addr}>"


def qp_value(value: str) -> bytes:
    """A recipient value encoded as quoted-printable lines of its own."""
    if len(value) < LINE and _QP_SAFE.fullmatch(value):
        return value.encode("ascii") + SOFT_BREAK
    encoded = body_encode(value.encode("utf-8").decode("latin-1"), LINE, "\r\n")
    return encoded.encode("ascii") + SOFT_BREAK


def qp_static(text: str) -> bytes:
    """A static stretch of a body, ending on a line boundary."""
    if not text:
        return b""
    encoded = body_encode(text.encode("utf-8").decode("latin-1"), LINE, "\r\n").encode("ascii")
    return encoded if text.endswith("\n") else encoded + SOFT_BREAK


def normal_body(text: str) -> str:
    """Lines joined by LF with a final LF, as the email package normalises a text part."""
    return "\n".join(text.splitlines()) + "\n"


Segment = tuple[bytes, str | None]


def body_segments(body: str, placeholders: Mapping[str, str], slot_prefix: str) -> list[Segment]:
    """Split a body on its placeholders into (encoded static chunk, slot) pairs."""
    by_marker = {marker: field for field, marker in placeholders.items()}
    if not by_marker:
        return [(qp_static(normal_body(body)), None)]
    pattern = re.compile("|".join(re.escape(m) for m in by_marker))
    out: list[Segment] = []
    pos = 0
    text = normal_body(body)
    for m in pattern.finditer(text):
        out.append((qp_static(text[pos : m.start()]), slot_prefix + by_marker[m.group(0)]))
        pos = m.end()
    out.append((qp_static(text[pos:]), None))
    return out


@dataclass(frozen=True)
class MessageTemplate:
    """A whole message as static chunks and named slots; ``fill`` joins them for one recipient.

    Header slots (``h:<name>``) take a finished header value; body slots
    (``text:<field>`` / ``html:<field>``) take the raw recipient value, which
    is HTML-escaped for the HTML part and quoted-printable encoded here.
    """

    segments: tuple[Segment, ...]
    header_slots: tuple[str, ...]
    body_fields: tuple[str, ...]

    @classmethod
    def build(
        cls,
        *,
        static_headers: Sequence[tuple[str, str]],
        recipient_headers: Sequence[str],
        header_order: Sequence[str],
        text: str,
        html: str,
        placeholders: Mapping[str, str],
        boundary: str,
    ) -> MessageTemplate:
        """Precompile a message. ``header_order`` names every header, static or recipient."""
        static = dict(static_headers)
        segments: list[Segment] = []
        pending = b""
        for name in header_order:
            if name in recipient_headers:
                segments.append((pending + name.encode("ascii") + b": ", "h:" + name))
                pending = CRLF
            else:
                pending += fold_header(name, static[name])
        content_type = f'multipart/alternative; boundary="{boundary}"'
        pending += b"MIME-Version: 1.0\r\n" + fold_header("Content-Type", content_type)
        delimiter = b"--" + boundary.encode("ascii")
        for subtype, body in (("plain", text), ("html", html)):
            pending += (
                CRLF
                + delimiter
                + CRLF
                + f'Content-Type: text/{subtype}; charset="utf-8"\r\n'.encode("ascii")
                + b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
            )
            prefix = "text:" if subtype == "plain" else "html:"
            for chunk, slot in body_segments(body, placeholders, prefix):
                if slot is None:  # the last chunk: what follows is static too
                    pending += chunk
                else:
                    segments.append((pending + chunk, slot))
                    pending = b""
        segments.append((pending + CRLF + delimiter + b"--" + CRLF, None))
        return cls(tuple(segments), tuple(recipient_headers), tuple(placeholders))

    def fill(self, headers: Mapping[str, str], values: Mapping[str, str]) -> bytes:
        """This recipient's message bytes. Header values must be checked and encoded already
        (ASCII, but for a To address with a non-ASCII local part: UTF-8)."""
        slots: dict[str, bytes] = {}
        for name in self.header_slots:
            slots["h:" + name] = headers[name].encode("utf-8")
        for field in self.body_fields:
            value = values[field]
            slots["text:" + field] = qp_value(value)
            slots["html:" + field] = qp_value(escape(value, quote=True))
        return b"".join([chunk + slots[slot] if slot else chunk for chunk, slot in self.segments])

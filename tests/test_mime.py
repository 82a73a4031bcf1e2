"""Per-recipient MIME messages: the precompiled fast path, its headers, and its safety."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.header import decode_header, make_header
from email.message import EmailMessage

import pytest
from fixed_edition import BASE_URL, fixed_factory, fixed_view

from digest.core.errors import SubscriberError
from digest.mail.message import Recipient, message_id
from digest.mail.mime import qp_value

RECIPIENTS = [
    Recipient(1, "ada@example.com", "Ada Lovelace"),
    Recipient(2, "zoe@example.com", "Zoë Müller"),
    Recipient(3, "odd@example.com", 'Smith, "Doc" (ret.)'),
    Recipient(4, "anon@example.com", ""),
    Recipient(5, "long@example.com", "Bartholomew " * 9),
    Recipient(6, "cjk@example.com", "李小龍"),
]


def parse(raw: bytes) -> EmailMessage:
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def squash(value: str) -> str:
    return " ".join(str(value).split())


def structure(message: EmailMessage) -> list[object]:
    """Everything about a message except how it happens to be folded and its boundary."""
    headers = [(name, squash(value)) for name, value in message.items() if name != "Content-Type"]
    parts = [
        (
            part.get_content_type(),
            part.get_content_charset(),
            part["Content-Transfer-Encoding"],
            part.get_content(),
        )
        for part in message.iter_parts()
    ]
    return [message.get_content_type(), headers, parts]


@pytest.mark.parametrize("recipient", RECIPIENTS, ids=lambda r: r.email)
def test_mime_fast_path_matches_the_email_message_path(recipient: Recipient) -> None:
    factory = fixed_factory()
    fast, slow = parse(factory.build(recipient)), parse(factory.build_reference(recipient))
    if not recipient.name.isascii() and len(recipient.name) > 20:  # parser splits these
        for message in (fast, slow):
            del message["To"]
    assert structure(fast) == structure(slow)


def test_mime_message_is_text_then_html_quoted_printable_utf8() -> None:
    message = parse(fixed_factory().build(RECIPIENTS[0]))
    assert message.get_content_type() == "multipart/alternative"
    parts = list(message.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    for part in parts:
        assert part.get_content_charset() == "utf-8"
        assert part["Content-Transfer-Encoding"] == "quoted-printable"
    assert message["MIME-Version"] == "1.0"


def test_mime_headers_carry_one_click_unsubscribe_and_list_headers() -> None:
    factory = fixed_factory()
    recipient = RECIPIENTS[0]
    message = parse(factory.build(recipient))
    url = factory.unsubscribe_url(recipient)
    assert url.startswith(f"{BASE_URL}/unsubscribe/1.")
    assert squash(message["List-Unsubscribe"]) == (
        f"<{url}>, <mailto:unsubscribe@news.example.org>"
    )
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["List-Id"] == "The Digest <digest.news.example.org>"
    assert message["Feedback-ID"] == "42:digest:news"
    assert message["From"] == "The Digest <digest@news.example.org>"
    assert message["To"] == "Ada Lovelace <ada@example.com>"
    assert message["Subject"] == "The Digest #42: Lighthouse keepers adopt solar lanterns"
    assert message["Date"]
    text, html = (p.get_content() for p in message.iter_parts())
    assert url in text and url in html
    preferences = factory.preferences_url(recipient)
    assert preferences.startswith(f"{BASE_URL}/preferences/1.")
    assert preferences in text and preferences in html


def test_mime_message_id_is_deterministic_per_edition_and_subscriber() -> None:
    first = parse(fixed_factory().build(RECIPIENTS[0]))["Message-ID"]
    again = parse(fixed_factory().build(RECIPIENTS[0]))["Message-ID"]
    other = parse(fixed_factory().build(RECIPIENTS[1]))["Message-ID"]
    assert (
        first == again == message_id(fixed_factory().options.signing_key, 42, 1, "news.example.org")
    )
    assert first != other
    assert first.endswith("@news.example.org>")


def test_mime_optional_headers_are_left_out_when_not_configured() -> None:
    factory = fixed_factory(unsubscribe_mailto="", feedback_id="")
    message = parse(factory.build(RECIPIENTS[0]))
    assert "Feedback-ID" not in message
    assert "mailto:" not in message["List-Unsubscribe"]


@pytest.mark.parametrize("recipient", RECIPIENTS, ids=lambda r: r.email)
def test_mime_lines_stay_short_and_ascii(recipient: Recipient) -> None:
    raw = fixed_factory(fixed_view(10)).build(recipient)
    raw.decode("ascii")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert all(len(line) <= 998 for line in head.split(b"\r\n"))
    assert all(len(line) <= 76 for line in body.split(b"\r\n"))
    assert b"\n" not in raw.replace(b"\r\n", b"")


def test_mime_non_ascii_subject_and_name_become_encoded_words() -> None:
    stories = fixed_view().stories
    view = fixed_view(stories=(stories[2], *stories[:2]))
    raw = fixed_factory(view).build(RECIPIENTS[1])
    head = raw.partition(b"\r\n\r\n")[0].decode("ascii")
    assert "=?utf-8?" in head
    message = parse(raw)
    assert message["Subject"] == "The Digest #42: Übersicht: Café owners try four-day weeks"
    assert message["To"].addresses[0].display_name == "Zoë Müller"


def test_mime_long_encoded_name_decodes_intact() -> None:
    name = "Zoë Müller-Lüdenscheidt von Überlingen und Ängelholm " * 2
    raw = fixed_factory().build(Recipient(9, "zoe@example.com", name))
    header = raw.split(b"\r\nTo: ", 1)[1].split(b"\r\nSubject:", 1)[0].decode("ascii")
    assert all(len(line) <= 78 for line in header.split("\r\n"))
    decoded = str(make_header(decode_header(header.replace("\r\n", ""))))
    assert decoded == f"{' '.join(name.split())} <zoe@example.com>"


@pytest.mark.parametrize(
    "name",
    ["Ada " + "x" * 200, "Zoë " * 40, "=?utf-8?q?fake?= " * 8, "a=b " * 30, "…" * 90],
)
def test_mime_placeholders_are_never_split_by_soft_line_breaks(name: str) -> None:
    factory = fixed_factory()
    message = parse(factory.build(Recipient(7, "x@example.com", name)))
    text, html = (p.get_content() for p in message.iter_parts())
    assert factory.unsubscribe_url(Recipient(7, "x@example.com", name)) in text
    assert "@@fixed_" not in text and "@@fixed_" not in html


@pytest.mark.parametrize(
    ("email", "name"),
    [
        ("ada@example.com", "Ada\r\nBcc: victim@example.com"),
        ("ada@example.com", "Ada\nX-Injected: 1"),
        ("ada@example.com", "Ada\0"),
        ("ada@example.com\r\nBcc: victim@example.com", "Ada"),
        ("not an address", "Ada"),
        ("ada@example.com>, <victim@example.com", "Ada"),
    ],
)
def test_mime_rejects_header_injection_in_recipient_values(email: str, name: str) -> None:
    with pytest.raises(SubscriberError):
        fixed_factory().build(Recipient(8, email, name))


def test_mime_qp_value_keeps_lines_short_and_round_trips() -> None:
    import quopri

    for value in ["plain", "x" * 300, "é" * 100, "trailing space ", "a=b"]:
        encoded = qp_value(value)
        assert all(len(line) <= 76 for line in encoded.split(b"\r\n"))
        assert quopri.decodestring(encoded.replace(b"\r\n", b"\n")).decode() == value

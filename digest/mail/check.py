"""The pre-send check: what would make a digest clipped, inaccessible or undeliverable.

``check_factory`` builds one sample message through the real sending path and
returns one line per finding (an empty list means it may go out). A finding
that starts with ``WARNING`` is reported but does not stop a send; the others
(``blocking``) do, unless the send is forced.
"""

from __future__ import annotations

import binascii
from dataclasses import replace
from email import message_from_bytes, policy
from email.message import Message
from html.parser import HTMLParser

from digest.core.errors import DigestError, RenderError
from digest.core.settings import Settings
from digest.mail.message import ONE_CLICK, SAMPLE_RECIPIENT, MessageFactory, parts_of, prepare
from digest.mail.preflight import preflight
from digest.render.edition import EditionView

# Gmail clips HTML larger than about 102 KB, hiding the footer and its unsubscribe link.
# It counts the part as it arrives (quoted-printable), so that is what is measured, and
# the check warns from 90 KB (a subscriber's longer name or links must not tip it over)
# and refuses from 102 KB.
GMAIL_CLIP_BYTES = 102 * 1024
GMAIL_WARN_BYTES = 90 * 1024
# A finding that starts with this is a warning: reported, but it does not stop a send.
WARNING = "warning: "
LINK_ATTRIBUTES = {"a": "href", "img": "src", "link": "href"}


class CheckFailed(DigestError):
    """The pre-send check found problems; carries the edition and one line per problem."""

    def __init__(self, edition_id: int | None, problems: list[str]) -> None:
        self.edition_id = edition_id
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        label = f"edition {edition_id}" if edition_id is not None else "the next edition"
        super().__init__(
            f"{label} failed the pre-send check (send --force to send anyway):\n{lines}"
        )


class _Links(HTMLParser):
    """Every link and image of an HTML document."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.images_without_alt: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        attribute = LINK_ATTRIBUTES.get(tag)
        if attribute and values.get(attribute) is not None:
            self.links.append(values[attribute] or "")
        if tag == "img" and not (values.get("alt") or "").strip():
            self.images_without_alt.append(values.get("src") or "?")


def check_factory(messages: MessageFactory, probe: MessageFactory | None = None) -> list[str]:
    """Problems with an edition's messages, one line each.

    ``probe`` is the same edition rendered with story text free of ``{{``/``{%``
    (see ``probe_for``): template leftovers are looked for there, so a story
    that quotes template syntax is not mistaken for a broken template.
    """
    problems: list[str] = []
    values = messages.body_values(SAMPLE_RECIPIENT)
    try:
        raw = messages.build(SAMPLE_RECIPIENT)
    except DigestError as exc:
        return [f"cannot build a message: {exc}"]
    except ValueError as exc:
        return [f"cannot build a message: {exc}"]
    parsed = message_from_bytes(raw, policy=policy.default)
    parts = list(parsed.iter_parts())
    types = [p.get_content_type() for p in parts]
    if types != ["text/plain", "text/html"]:
        return [f"message parts are {types}, not text/plain then text/html"]
    text, html = (p.get_content() for p in parts)

    problems += size_findings(encoded_size(parts[1]))
    links = _Links()
    links.feed(html)
    for src in links.images_without_alt:
        problems.append(f"image without alt text: {src}")
    for link in dict.fromkeys(links.links):
        if not link.startswith(("http://", "https://")):
            problems.append(f"link is not http(s): {link}")
    unsubscribe = values["unsubscribe_url"]
    for part, body in (("HTML", html), ("text", text)):
        if unsubscribe not in body:
            problems.append(f"no unsubscribe link in the {part} part")
    if probe is not None:
        text, html = parts_of(probe.build(SAMPLE_RECIPIENT))
    for part, body in (("HTML", html), ("text", text)):
        for syntax in TEMPLATE_SYNTAX:
            if syntax in body:
                problems.append(f"unrendered template syntax {syntax!r} in the {part} part")
    header = str(parsed.get("List-Unsubscribe", ""))
    if f"<{unsubscribe}>" not in header:
        problems.append("List-Unsubscribe header missing or without the unsubscribe URL")
    post = str(parsed.get("List-Unsubscribe-Post", ""))
    if messages.options.one_click and post != ONE_CLICK:
        problems.append(f"List-Unsubscribe-Post header missing (must be {ONE_CLICK})")
    if not messages.options.one_click and post:
        problems.append("List-Unsubscribe-Post header with a URI that is not https")
    for name in ("From", "To", "Subject", "Date", "Message-ID"):
        if not parsed.get(name):
            problems.append(f"{name} header missing")
    return problems


def size_findings(size: int, what: str = "HTML part") -> list[str]:
    """What the check says of an HTML part of ``size`` bytes as sent: a problem from
    Gmail's clipping size, a warning from 90 KB, else nothing."""
    if size >= GMAIL_CLIP_BYTES:
        return [
            f"{what} is {size / 1024:.0f} KB as sent (quoted-printable): Gmail clips"
            " from about 102 KB, hiding the unsubscribe link; keep it under 90 KB"
        ]
    if size >= GMAIL_WARN_BYTES:
        return [
            f"{WARNING}{what} is {size / 1024:.0f} KB as sent (quoted-printable), close"
            " to where Gmail clips (about 102 KB); keep it under 90 KB"
        ]
    return []


def html_size(html: str) -> int:
    """About the bytes an HTML part takes as sent (quoted-printable, CRLF lines), without
    building a message: within a few bytes in a thousand of ``encoded_size``."""
    encoded = binascii.b2a_qp(html.encode("utf-8"), istext=True)
    return len(encoded) + encoded.count(b"\n")


def blocking(findings: list[str]) -> list[str]:
    """The findings that stop a send (without --force): all but the warnings."""
    return [f for f in findings if not f.startswith(WARNING)]


def warnings(findings: list[str]) -> list[str]:
    """The warnings among the findings, without their prefix."""
    return [f.removeprefix(WARNING) for f in findings if f.startswith(WARNING)]


def encoded_size(part: Message) -> int:
    """Bytes of a MIME part's body as it goes on the wire: transfer-encoded, CRLF lines."""
    payload = part.get_payload()
    assert isinstance(payload, str)
    return len("\r\n".join(payload.splitlines()).encode("ascii", "replace"))


TEMPLATE_SYNTAX = ("{{", "{%")


def _defused(text: str) -> str:
    return text.replace("{", "(")


def probe_for(
    settings: Settings, view: EditionView, edition_id: int | None = None
) -> MessageFactory | None:
    """The edition rendered with the braces in story text defused, when any story has some."""
    fields = [
        t
        for s in view.stories
        for t in (s.headline, s.summary, *s.bullets, s.url or "", s.body or "")
    ]
    if not any(syntax in t for t in fields for syntax in TEMPLATE_SYNTAX):
        return None
    defused = replace(
        view,
        stories=tuple(
            replace(
                s,
                headline=_defused(s.headline),
                summary=_defused(s.summary),
                bullets=tuple(_defused(b) for b in s.bullets),
                body=_defused(s.body) if s.body else s.body,
            )
            for s in view.stories
        ),
    )
    return prepare(settings, defused, edition_id)


def check_edition(
    settings: Settings,
    view: EditionView,
    edition_id: int | None = None,
    messages: MessageFactory | None = None,
) -> list[str]:
    """The preflight of the settings, then (rendering unless ``messages`` is given) the
    edition's messages; a template or MJML failure is a problem, not an error."""
    problems = preflight(settings)
    try:
        messages = messages or prepare(settings, view, edition_id)
        probe = probe_for(settings, view, edition_id)
    except RenderError as exc:
        return [*problems, str(exc)]
    return problems + check_factory(messages, probe)

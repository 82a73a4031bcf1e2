"""A story's body in the digest: cut to a length, then written as email HTML and as plain text.

The body was sanitized when it was stored (``Story.body``); here it is parsed
again with ``html.parser`` into a flat list of events, cut on its *visible*
text at a word boundary, and every tag left open at the cut is closed. Both
parts are written from that one event list: the HTML from scratch (only the
tags below, only ``href``/``title`` on links, every text and attribute value
escaped again), so what reaches MJML is always well-formed whatever the
stored markup was; the text part with no tags and entities decoded.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from html import escape, unescape
from html.parser import HTMLParser

from markupsafe import Markup

ELLIPSIS = "…"
READ_MORE = "Read more"
LINK_STYLE = "color:#1a5fb4;"
# The tags a body keeps (the ingest allow-list) and the inline style each gets in the email.
BLOCK_STYLES = {
    "p": "margin:0 0 10px;",
    "blockquote": "margin:0 0 10px;padding-left:12px;border-left:3px solid #cbd2d9;",
    "pre": "margin:0 0 10px;white-space:pre-wrap;font-size:14px;",
    "ul": "margin:0 0 10px;padding-left:20px;",
    "ol": "margin:0 0 10px;padding-left:20px;",
    "li": "margin:0 0 4px;",
    "h2": "margin:0 0 8px;font-size:18px;line-height:1.3;color:#102a43;",
    "h3": "margin:0 0 8px;font-size:17px;line-height:1.3;color:#102a43;",
    "h4": "margin:0 0 8px;font-size:16px;line-height:1.3;color:#102a43;",
}
INLINE_TAGS = {"a", "strong", "b", "em", "i", "code"}
# Story headlines are h2: a body's headings go one level below them.
HEADINGS_BELOW_HEADLINE = {"h2": "h3", "h3": "h4", "h4": "h5"}
WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Start:
    tag: str
    href: str | None = None
    title: str | None = None


@dataclass(frozen=True)
class End:
    tag: str


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Break:
    pass


Event = Start | End | Text | Break


class _Events(HTMLParser):
    """Sanitized HTML as a balanced list of events, whitespace collapsed outside ``pre``."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.events: list[Event] = []
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self.events.append(Break())
        elif tag in BLOCK_STYLES or tag in INLINE_TAGS:
            values = dict(attrs)
            self.events.append(Start(tag, values.get("href"), values.get("title")))
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self.events.append(Break())

    def handle_endtag(self, tag: str) -> None:
        if tag not in self.open:
            return  # a stray end tag: nothing to close
        while self.open:
            top = self.open.pop()
            self.events.append(End(top))
            if top == tag:
                break

    def handle_data(self, data: str) -> None:
        text = data if "pre" in self.open else WHITESPACE.sub(" ", data)
        if text:
            self.events.append(Text(text))

    def finish(self) -> list[Event]:
        self.close()
        self.events.extend(End(tag) for tag in reversed(self.open))
        self.open.clear()
        return self.events


def parse(html: str) -> list[Event]:
    parser = _Events()
    parser.feed(html)
    return parser.finish()


def _visible(events: list[Event]) -> tuple[str, list[int]]:
    """The text a reader sees (a space between blocks) and where each Text event starts in it."""
    flat: list[str] = []
    length = 0
    starts: list[int] = []
    for event in events:
        if isinstance(event, Text):
            text = event.text
            if length and flat[-1].endswith(" ") and text.startswith(" "):
                text = text[1:]  # adjacent spaces in two elements show as one
            starts.append(length - (len(event.text) - len(text)))
            flat.append(text)
            length += len(text)
        else:
            starts.append(length)
            tag = event.tag if isinstance(event, Start | End) else "br"
            if (tag in BLOCK_STYLES or tag == "br") and length and not flat[-1].endswith(" "):
                flat.append(" ")
                length += 1
    return "".join(flat), starts


def _cut_point(visible: str, limit: int) -> int:
    """Where to cut ``visible`` to keep at most ``limit`` characters, at a word boundary if any."""
    if visible[limit].isspace():
        return len(visible[:limit].rstrip())
    space = max(visible.rfind(" ", 0, limit), visible.rfind("\n", 0, limit))
    if space <= 0:
        return limit  # one word longer than the limit: cut inside it
    return len(visible[:space].rstrip())


def cut(events: list[Event], limit: int, url: str | None) -> tuple[list[Event], bool]:
    """The events up to ``limit`` visible characters; a cut ends with an ellipsis and,
    when there is a ``url``, a "Read more" link, inside the block the cut fell in."""
    visible, starts = _visible(events)
    if len(visible.strip()) <= limit:
        return events, False
    point = _cut_point(visible, limit)
    kept: list[Event] = []
    open_tags: list[str] = []
    for event, start in zip(events, starts, strict=True):
        if start >= point and not isinstance(event, End):
            break
        if isinstance(event, Text):
            text = event.text[: point - start] if start + len(event.text) > point else event.text
            kept.append(Text(text))
            if start + len(event.text) >= point:
                break
        else:
            kept.append(event)
            if isinstance(event, Start):
                open_tags.append(event.tag)
            elif isinstance(event, End):
                open_tags.pop()
    while open_tags and open_tags[-1] in INLINE_TAGS:  # no link inside a link
        kept.append(End(open_tags.pop()))
    if kept and isinstance(kept[-1], Text):
        kept[-1] = Text(kept[-1].text.rstrip())
    kept.append(Text(ELLIPSIS))
    if url is not None:
        kept += [Text(" "), Start("a", url), Text(READ_MORE), End("a")]
    kept.extend(End(tag) for tag in reversed(open_tags))
    return kept, True


def is_http(url: str | None) -> bool:
    return url is not None and url.startswith(("http://", "https://"))


def to_html(events: list[Event]) -> str:
    """Email HTML: allowed tags with inline styles; only http(s) links stay links (a mailto:
    one becomes its text and address: the pre-send check allows http(s) links only)."""
    out: list[str] = []
    links: list[tuple[bool, str | None, int]] = []  # open <a>: written?, href, its text's start
    for event in events:
        if isinstance(event, Text):
            out.append(escape(event.text, quote=False))
        elif isinstance(event, Break):
            out.append("<br />")
        elif isinstance(event, Start) and event.tag == "a":
            if is_http(event.href):
                title = f' title="{escape(event.title)}"' if event.title else ""
                href = escape(event.href or "", quote=True)
                out.append(f'<a href="{href}"{title} style="{LINK_STYLE}">')
            links.append((is_http(event.href), event.href, len(out)))
        elif isinstance(event, Start):
            tag = HEADINGS_BELOW_HEADLINE.get(event.tag, event.tag)
            style = BLOCK_STYLES.get(event.tag)
            out.append(f'<{tag} style="{style}">' if style else f"<{tag}>")
        elif event.tag == "a":
            written, target, begin = links.pop()
            if written:
                out.append("</a>")
            else:
                address = _address(target, unescape("".join(out[begin:])))
                out.append(escape(f" ({address})", quote=False) if address else "")
        else:
            out.append(f"</{HEADINGS_BELOW_HEADLINE.get(event.tag, event.tag)}>")
    return "".join(out)


def _address(href: str | None, text: str) -> str:
    """The address a link's text should be followed by in plain text ("" when the text is it)."""
    if not href:
        return ""
    address = href.removeprefix("mailto:")
    return "" if text.strip() in (href, address) else address


@dataclass
class _Block:
    first: str  # prefix of the first line
    rest: str  # prefix of the lines after it
    text: str
    kind: str  # "p", "pre" or "li": a list item's first block, after an item or its parent's


class _TextBlocks:
    """Walks the events and collects plain-text blocks with their list and quote prefixes."""

    def __init__(self) -> None:
        self.blocks: list[_Block] = []
        self.lists: list[list[int]] = []  # per open list: [next number] (ol) or [] (ul)
        self.quote = 0
        self.preformatted = False
        self.buffer: list[str] = []
        self.links: list[tuple[str | None, int]] = []  # open <a>: href, where its text starts
        self.prefix = ("", "")
        self.item = False  # the next block is a list item's first
        self.new_list = False  # ... and of a list's first item, not inside another list

    def base(self) -> str:
        return "  " * max(len(self.lists) - 1, 0) + "> " * self.quote

    def flush(self) -> None:
        text = "".join(self.buffer)
        self.buffer.clear()
        if self.preformatted:
            text = text.strip("\n")
        else:
            text = "\n".join(" ".join(line.split()) for line in text.split("\n")).strip("\n")
        if not text.strip():
            return
        tight = self.item and not self.new_list
        kind = "pre" if self.preformatted else "li" if tight else "p"
        self.blocks.append(_Block(*self.prefix, text, kind))
        self.prefix = (self.prefix[1], self.prefix[1])
        self.item = self.new_list = False

    def feed(self, event: Event) -> None:
        if isinstance(event, Text):
            self.buffer.append(event.text)
        elif isinstance(event, Break):
            self.buffer.append("\n")
        elif event.tag == "a":
            if isinstance(event, Start):
                self.links.append((event.href, len("".join(self.buffer))))
            elif self.links:
                href, begin = self.links.pop()
                address = _address(href, "".join(self.buffer)[begin:])
                self.buffer.append(f" ({address})" if address else "")
        elif event.tag not in INLINE_TAGS:
            self.flush()
            self.block(event)

    def block(self, event: Start | End) -> None:
        starting = isinstance(event, Start)
        if event.tag in ("ul", "ol"):
            if starting:
                self.new_list = not self.lists
                self.lists.append([1] if event.tag == "ol" else [])
            elif self.lists:
                self.lists.pop()
        elif event.tag == "blockquote":
            self.quote += 1 if starting else -1
        elif event.tag == "pre":
            self.preformatted = starting
        if event.tag == "li" and starting and self.lists:
            counter = self.lists[-1]
            marker = f"{counter[0]}. " if counter else "* "
            if counter:
                counter[0] += 1
            self.prefix = (self.base() + marker, self.base() + " " * len(marker))
            self.item = True
        elif event.tag != "p" or not self.lists:
            # a paragraph inside a list item keeps the item's indent; anything else
            # starts again from the current nesting
            pad = "  " if self.lists and event.tag != "li" else ""
            self.prefix = (self.base() + pad, self.base() + pad)


def to_text(events: list[Event], indent: str = "   ", width: int = 72) -> str:
    """Plain text: paragraphs apart by blank lines (list items by line breaks), wrapped to
    ``width`` with URLs never broken, links followed by their address, entities decoded."""
    walker = _TextBlocks()
    for event in events:
        walker.feed(event)
    walker.flush()
    out: list[str] = []
    for block in walker.blocks:
        if out:
            out.append("\n" if block.kind == "li" else "\n\n")
        lines = []
        for i, line in enumerate(block.text.split("\n")):
            first = indent + (block.first if i == 0 else block.rest)
            rest = indent + block.rest
            if block.kind == "pre":
                lines.append((first + line).rstrip())
                continue
            lines.append(
                textwrap.fill(
                    line,
                    width=width,
                    initial_indent=first,
                    subsequent_indent=rest,
                    break_long_words=False,
                    break_on_hyphens=False,
                )
            )
        out.append("\n".join(lines))
    return "".join(out)


@dataclass(frozen=True)
class Body:
    """A story body as the email shows it: well-formed HTML, plain text, and whether it was cut."""

    html: Markup
    text: str
    cut: bool

    def __bool__(self) -> bool:
        return bool(self.text)


NO_BODY = Body(Markup(""), "", False)


def story_body(html: str | None, limit: int, url: str | None, summary: str = "") -> Body:
    """``html`` (sanitized at ingest) cut to ``limit`` visible characters; none when
    ``limit`` is 0, the body is empty, or it only repeats the summary (a feed item's
    summary is its body's text)."""
    if not html or limit <= 0:
        return NO_BODY
    events = parse(html)
    words = _visible(events)[0].split()
    if not words or words == summary.split():
        return NO_BODY
    kept, was_cut = cut(events, limit, url if is_http(url) else None)
    # The HTML is rebuilt above from the allow-list, every text and value escaped again.
    return Body(Markup(to_html(kept)), to_text(kept), was_cut)

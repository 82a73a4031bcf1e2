"""Unit tests: signed subscriber tokens, and rendering that never lets story text become markup."""

from __future__ import annotations

from datetime import UTC, datetime
from html.parser import HTMLParser

import pytest

from digest.render.edition import EditionView, Rendered, StoryView, render
from subscribers.tokens import PURPOSES, make_token, read_token

KEY = b"test-signing-key"

# --- tokens ---------------------------------------------------------------


@pytest.mark.parametrize("purpose", sorted(PURPOSES))
@pytest.mark.parametrize("subscriber_id", [0, 1, 42, 10**12])
def test_tokens_roundtrip(purpose: str, subscriber_id: int) -> None:
    token = make_token(KEY, purpose, subscriber_id)
    assert token.startswith(f"{subscriber_id}.")
    assert read_token(KEY, purpose, token) == (subscriber_id, 1)


def test_tokens_have_one_spelling_only() -> None:
    token = make_token(KEY, "unsubscribe", 7)
    head, sig = token.split(".")
    assert read_token(KEY, "unsubscribe", token) == (7, 1)
    for other in (f"0{head}.{sig}", f"00{head}.{sig}", f"+{head}.{sig}"):
        assert read_token(KEY, "unsubscribe", other) is None


def test_tokens_are_url_safe() -> None:
    token = make_token(KEY, "unsubscribe", 7)
    assert token.replace(".", "").replace("-", "").replace("_", "").isalnum()


def flip(ch: str) -> str:
    return "A" if ch != "A" else "B"


def forgeries() -> dict[str, str]:
    good = make_token(KEY, "unsubscribe", 42)
    head, sig = good.split(".")
    return {
        "tampered-signature": f"{head}.{sig[:5]}{flip(sig[5])}{sig[6:]}",
        "tampered-last-char": good[:-1] + flip(good[-1]),
        "truncated": good[:-1],
        "extended": good + "A",
        "signature-only": f".{sig}",
        "id-only": head,
        "id-and-dot": f"{head}.",
        "other-subscriber": f"43.{sig}",
        "other-purpose": make_token(KEY, "confirm", 42),
        "other-key": make_token(b"another key", "unsubscribe", 42),
        "negative-id": f"-42.{sig}",
        "extra-dot": f"{good}.x",
        "empty": "",
        "garbage": "not a token at all",
    }


@pytest.mark.parametrize("name", list(forgeries()))
def test_tokens_forged_token_reads_as_none(name: str) -> None:
    assert read_token(KEY, "unsubscribe", forgeries()[name]) is None


@pytest.mark.parametrize("shape", ["superscript-id", "non-ascii-signature"])
def test_tokens_non_ascii_token_reads_as_none(shape: str) -> None:
    head, sig = make_token(KEY, "unsubscribe", 2).split(".")
    token = f"\u00b2.{sig}" if shape == "superscript-id" else f"{head}.{sig[:-1]}\u00e9"
    assert read_token(KEY, "unsubscribe", token) is None


def test_tokens_unknown_purpose_is_refused() -> None:
    with pytest.raises(ValueError, match="purpose"):
        make_token(KEY, "delete-everything", 1)


# --- render ---------------------------------------------------------------


class Parsed(HTMLParser):
    """Every tag and every piece of text of an HTML document."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.links: list[tuple[str, str]] = []
        self.text: list[str] = []
        self._href: str | None = None
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        if tag == "a":
            self._href = dict(attrs).get("href") or ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._href = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._href is not None:
            self.links.append((self._href, data))


def rendered(*stories: StoryView) -> tuple[str, str]:
    result: Rendered = render(
        EditionView(7, datetime(2024, 3, 5, 9, 0, tzinfo=UTC), tuple(stories)),
        newsletter="The Digest",
        base_url="https://news.example.org",
    )
    values = {field: f"https://news.example.org/{field}/x" for field in result.placeholders}
    values["name"] = "Reader"
    return result.personalize(values)


HOSTILE = StoryView(
    headline="Alert <script>alert(1)</script> & {{ x }}",
    summary="Sneaky <mj-text>break out</mj-text> {% if true %}jinja{% endif %}",
    bullets=("a raw < sign, an & and <b>bold</b> text", "close </li></ul> early & <img src=x>"),
)


def test_render_story_markup_appears_as_text_never_as_tags() -> None:
    html, text = rendered(HOSTILE)
    doc = Parsed(html)
    assert not doc.tags & {"script", "mj-text", "b", "img", "mjml"}
    visible = "".join(doc.text)
    for piece in (HOSTILE.headline, HOSTILE.summary, *HOSTILE.bullets):
        assert piece in visible
        assert piece in text
    assert "<script>" not in html and "<mj-text>" not in html


def test_render_linkifies_bare_urls_in_bullets() -> None:
    story = StoryView(
        headline="Links",
        summary="Summary",
        bullets=(
            "Read https://example.com/a?b=1&c=2. Then more.",
            "Also (http://example.org/path) and javascript:alert(1) stays text.",
        ),
    )
    html, _ = rendered(story)
    links = Parsed(html).links
    assert ("https://example.com/a?b=1&c=2", "https://example.com/a?b=1&c=2") in links
    assert ("http://example.org/path", "http://example.org/path") in links
    assert not [href for href, _ in links if href.startswith("javascript")]


LONG_URL = "https://example.com/" + "very-long-path-segment/" * 6 + "end"


def test_render_text_part_wraps_at_72_columns_except_urls() -> None:
    story = StoryView(
        headline="A headline that goes on and on, far longer than one line of a terminal allows",
        summary=" ".join(["The summary keeps going"] * 12),
        bullets=(
            " ".join(["bullet words"] * 30),
            f"see {LONG_URL} for the rest of this rather long bullet text here",
        ),
    )
    _, text = rendered(story)
    assert any(LONG_URL in line for line in text.splitlines())
    for line in text.splitlines():
        if len(line) <= 72:
            continue
        words = line.split()
        urls = [w for w in words if w.startswith(("http://", "https://"))]
        assert len(urls) == 1, f"over 72 columns without a URL to blame: {line!r}"
        assert len(words) <= 2, f"a long URL shares its line with text: {line!r}"
    flat = " ".join(text.split())
    for piece in (story.headline, story.summary, *story.bullets):
        assert piece in flat

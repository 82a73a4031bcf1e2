"""Story bodies in the digest: in the HTML part, the text part and the archive, cut at
DIGEST_BODY_MAX_CHARS on a word with "Read more", always well-formed."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from conftest import SEEDS, Captured, Cli
from fastapi.testclient import TestClient
from fixed_edition import fixed_factory, fixed_render, fixed_view
from hypothesis import given, settings
from hypothesis import strategies as st
from mjml import mjml2html

from digest.core.db import make_engine, session_factory
from digest.mail.message import Recipient, parts_of
from digest.render.body import story_body
from digest.render.edition import StoryView
from digest.sources.formats.fields import sanitize_html
from digest.sources.formats.markdown import render_body
from digest.web.app import create_app

RAIL = SEEDS / "stories" / "012_rail_line.md"
RAIL_BODY_TEXT = (
    "The regional council approved the coastal line on Tuesday, ending ten years of studies. "
    "Read the plan (https://example.org/plans/coastal-rail)."
)
WORDS = [f"word{i:02d}" for i in range(60)]
STORY_URL = "https://example.org/news/long"


def parts(message: EmailMessage) -> tuple[str, str]:
    text, html = (part.get_content() for part in message.iter_parts())
    return text, html


def flat(text: str) -> str:
    """Text with its line wrapping and indentation undone."""
    return " ".join(text.split())


def well_formed(fragment: str) -> ET.Element:
    """``fragment`` parsed strictly (every tag closed, properly nested), or ParseError."""
    return ET.fromstring(f"<div>{fragment}</div>")


def send_one(cli: Cli, *stories: Path, **env: str) -> None:
    cli.env.update(env)
    cli("init")
    cli("stories", "import", *map(str, stories))
    cli("subscribers", "add", "reader@example.com", "--name", "Reader")
    cli("edition", "build")
    cli("send", "latest")


def long_story(tmp_path: Path) -> Path:
    # The words alternate plain and <strong>, so most cuts fall inside an open tag.
    chunks = [f"<strong>{w}</strong>" if i % 4 == 2 else w for i, w in enumerate(WORDS)]
    body = "<p>" + " ".join(chunks[:30]) + "</p><p>" + " ".join(chunks[30:]) + "</p>"
    story = {
        "headline": "A long story",
        "summary": "Its body is longer than the digest shows.",
        "url": STORY_URL,
        "body": body,
    }
    path = tmp_path / "long.json"
    path.write_text(json.dumps(story), encoding="utf-8")
    return path


def test_story_bodies_seed_markdown_body_arrives_in_html_text_and_archive(
    cli: Cli, captured: Captured
) -> None:
    send_one(cli, RAIL)
    [message] = captured.messages()
    text, html = parts(message)
    assert "The regional council approved the <strong>coastal line</strong> on Tuesday" in html
    assert '<a href="https://example.org/plans/coastal-rail"' in html
    assert RAIL_BODY_TEXT in flat(text)
    assert "<strong>" not in text
    # Short enough: not cut, so the story's one "Read more" stays at its end.
    assert "…" not in text and "Read more: https://example.org/news/coastal-rail" in text

    settings_ = cli.settings()
    engine = make_engine(settings_.effective_database_url)
    try:
        page = TestClient(create_app(settings_, session_factory(engine)), "http://127.0.0.1").get(
            "/archive/1"
        )
    finally:
        engine.dispose()
    assert page.status_code == 200
    assert "The regional council approved the <strong>coastal line</strong>" in page.text


def test_story_bodies_long_body_is_cut_at_a_word_with_read_more(
    cli: Cli, captured: Captured, tmp_path: Path
) -> None:
    send_one(cli, long_story(tmp_path), DIGEST_BODY_MAX_CHARS="100")
    [message] = captured.messages()
    text, html = parts(message)

    shown = flat(text).split("Its body is longer than the digest shows. ", 1)[1]
    before, _, after = shown.partition("…")
    words = before.split()
    assert words == WORDS[: len(words)], "the cut is not at a word boundary"
    assert len(before) <= 100 and len(before) + len(WORDS[len(words)]) + 1 > 100
    assert after.startswith(f" Read more ({STORY_URL})")
    assert WORDS[len(words)] not in text and WORDS[-1] not in html
    assert f"Read more: {STORY_URL}" not in text  # one "Read more", at the cut

    # The cut paragraph in the HTML part: closed where it was cut, the link inside it.
    start = html.index("<p", html.index("Its body is longer"))
    fragment = html[start : html.index("</p>", start) + 4]
    paragraph = well_formed(fragment)
    [link] = paragraph.iter("a")
    assert link.get("href") == STORY_URL and link.text == "Read more"
    assert WORDS[len(words) - 1] in "".join(paragraph.itertext())
    assert cli("check", "latest").output == "edition 1: ok\n"


def test_story_bodies_markup_renders_in_html_and_as_plain_text() -> None:
    body = render_body(
        "Fish &amp; chips *tonight*, see [the menu](https://example.org/menu) or "
        "[write](mailto:chef@example.org).\n\n"
        "- first item\n- second **item**\n\n"
        "1. one\n2. two\n\n"
        "> a quote\n\n"
        "```\nkeep  this\n  layout\n```\n\n"
        "## Under the headline\n"
    )
    story = StoryView("Headline", "Summary.", (), "https://example.org/s", body=body)
    rendered = fixed_render(fixed_view(stories=(story,)))

    assert "Fish &amp; chips <em>tonight</em>" in rendered.html
    assert '<a href="https://example.org/menu" style="color:#1a5fb4;">the menu</a>' in rendered.html
    assert re.search(r"<li[^>]*>second <strong>item</strong></li>", rendered.html)
    assert re.search(r"<ol[^>]*>", rendered.html) and re.search(r"<blockquote", rendered.html)
    assert "mailto:" not in rendered.html  # only http(s) links: the pre-send check's rule
    assert "write (chef@example.org)" in rendered.html
    assert re.search(r"<h3[^>]*>Under the headline</h3>", rendered.html)  # below the h2 headline

    text = rendered.text
    assert "<" not in text.replace("<raw>", "") and "&amp;" not in text
    assert (
        "Fish & chips tonight, see the menu (https://example.org/menu) or write (chef@example.org)."
        in flat(text)
    )
    assert "\n\n   * first item\n   * second item\n\n" in text
    assert "\n\n   1. one\n   2. two\n\n" in text
    assert "   > a quote" in text
    assert "   keep  this\n     layout" in text
    assert "\n\n   Under the headline\n" in text


def test_story_bodies_text_that_quotes_markup_stays_text() -> None:
    body = sanitize_html(
        "<p>Use &lt;script&gt; &amp; {{ 7 * 7 }} <b>bold</b><script>x</script></p>"
    )
    story = StoryView("H", "S.", (), None, body=body)
    rendered = fixed_render(fixed_view(stories=(story,)))
    assert "&lt;script&gt; &amp; {{ 7 * 7 }} <b>bold</b>" in rendered.html
    assert "<script" not in rendered.html
    assert "Use <script> & {{ 7 * 7 }} bold" in rendered.text


def test_story_bodies_links_that_go_nowhere_become_their_text() -> None:
    body = sanitize_html('<p><a>bare</a>, <a href="javascript:alert(1)">js</a> and <b>end</b></p>')
    html = str(story_body(body, 600, None).html)
    well_formed(html)
    assert "<a" not in html and "</a>" not in html and "javascript" not in html
    assert "bare, js and <b>end</b>" in html


def test_story_bodies_a_body_that_only_repeats_the_summary_is_left_out() -> None:
    story = StoryView("H", "The whole item.", (), None, body="<p>The whole  item.</p>")
    rendered = fixed_render(fixed_view(stories=(story,)))
    assert rendered.text.count("The whole item.") == 1
    assert rendered.html.count("The whole") == 1


def test_story_bodies_max_chars_zero_leaves_bodies_out(cli: Cli, captured: Captured) -> None:
    send_one(cli, RAIL, DIGEST_BODY_MAX_CHARS="0")
    text, html = parts(captured.messages()[0])
    assert "regional council" not in text and "regional council" not in html
    assert "Read more: https://example.org/news/coastal-rail" in text


def test_story_bodies_max_chars_out_of_range_is_one_line(cli: Cli) -> None:
    cli("init")
    for value in ("-1", "200001", "many"):
        cli.env["DIGEST_BODY_MAX_CHARS"] = value
        result = cli("preview", "next", "--format", "text", ok=False)
        assert result.exit_code != 0
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and "DIGEST_BODY_MAX_CHARS" in lines[0], result.output
        assert "Traceback" not in result.output


def test_story_bodies_seed_edition_passes_the_check_with_whole_bodies(cli: Cli) -> None:
    cli.env["DIGEST_BODY_MAX_CHARS"] = "200000"
    cli("init")
    cli("stories", "import", str(SEEDS / "stories"))
    cli("subscribers", "add", "reader@example.com")
    cli("edition", "build")
    assert cli("check", "latest").output == "edition 1: ok\n"
    assert "The regional council approved" in cli("preview", "latest", "--format", "text").output


def test_story_bodies_template_syntax_in_a_body_is_not_a_check_problem(
    cli: Cli, tmp_path: Path
) -> None:
    story = {"headline": "Templates", "summary": "How to write them.", "body": "<p>{{ x }}</p>"}
    path = tmp_path / "braces.json"
    path.write_text(json.dumps(story), encoding="utf-8")
    cli("init")
    cli("stories", "import", str(path))
    cli("subscribers", "add", "reader@example.com")
    assert cli("check", "next").output.endswith("ok\n")


MARKDOWN_PIECES = st.sampled_from(
    [
        "word",
        "longerword",
        "*em*",
        "**strong text**",
        "`code`",
        "[link text](https://example.org/l)",
        "[mail](mailto:a@example.org)",
        "&amp;",
        "<",
        "\n\n",
        "\n- ",
        "\n1. ",
        "\n> ",
        "\n\n```\npre  line\n```\n\n",
        "\n## ",
        "  \n",
        "é",
        " ",
    ]
)


@settings(max_examples=200, deadline=None)
@given(pieces=st.lists(MARKDOWN_PIECES, min_size=1, max_size=40), limit=st.integers(1, 400))
def test_story_bodies_any_cut_is_well_formed_and_compiles(pieces: list[str], limit: int) -> None:
    html = render_body(" ".join(pieces))
    body = story_body(html, limit, STORY_URL)
    root = well_formed(str(body.html))
    if body.cut:
        assert [a.get("href") for a in root.iter("a")][-1] == STORY_URL
        # (a mailto: link shows as its text and its address: the address is extra)
        shown = "".join(root.itertext()).rsplit("…", 1)[0].replace(" (a@example.org)", "")
        assert len(" ".join(shown.split())) <= limit
    assert not re.search(r"</?[a-z][a-z0-9]*[ />]", body.text)
    column = f"<mj-column><mj-text>{body.html}</mj-text></mj-column>"
    mjml = f"<mjml><mj-body><mj-section>{column}</mj-section></mj-body></mjml>"
    assert "</html>" in mjml2html(mjml, fonts={}, disable_comments=True)


def test_story_bodies_a_wide_body_fits_a_phone(chromium: Any, tmp_path: Path) -> None:
    long_url = "https://example.org/" + "a-very-long-path-segment/" * 8
    body = render_body(
        f"A link that is all address: [{long_url}]({long_url}).\n\n"
        "```\n" + "code_that_does_not_wrap_" * 6 + "\n```\n\n"
        "- " + "averyveryverylongwordwithoutanyspaces" * 3 + "\n"
    )
    story = StoryView("Wide body", "Its parts are wider than a phone.", (), STORY_URL, body=body)
    factory = fixed_factory(fixed_view(stories=(story,)))
    _, html = parts_of(factory.build(Recipient(1, "ada@example.com", "Ada")))
    path = tmp_path / "digest.html"
    path.write_text(html, encoding="utf-8")
    page = chromium.new_page(viewport={"width": 375, "height": 900})
    page.route(
        "**/*",
        lambda route: route.continue_() if route.request.url.startswith("file:") else route.abort(),
    )
    page.goto(path.as_uri())
    assert page.get_by_text("A link that is all address").is_visible()
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= page.evaluate("window.innerWidth"), "horizontal scrolling at 375px"
    page.close()


def test_story_bodies_demo_messages_carry_the_rail_line_body(tmp_path: Path) -> None:
    var = tmp_path / "var"
    Cli({}, tmp_path)("demo", "--var-dir", str(var))
    messages = [
        message_from_bytes(p.read_bytes(), policy=policy.default)
        for p in (var / "mail" / "new").iterdir()
    ]
    assert len(messages) == 20
    for message in messages:
        assert isinstance(message, EmailMessage)
        text, html = parts(message)
        assert "approved the <strong>coastal line</strong> on Tuesday" in html
        assert RAIL_BODY_TEXT in flat(text)

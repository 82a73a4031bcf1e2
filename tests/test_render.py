"""Rendering an edition: goldens, accessibility, escaping and template overrides.

Goldens live in tests/golden/; after an intended template change, rewrite them
with `DIGEST_UPDATE_GOLDEN=1 make test` (or the same variable on pytest) and
review the diff.
"""

from __future__ import annotations

import os
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fixed_edition import BASE_URL, fixed_render, fixed_stories, fixed_view

from digest.core.errors import RenderError
from digest.render.edition import StoryView, render

GOLDEN = Path(__file__).parent / "golden"
# Read at import: the autouse clean_environment fixture removes DIGEST_* variables.
UPDATE_GOLDEN = bool(os.environ.get("DIGEST_UPDATE_GOLDEN"))


def assert_golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    if UPDATE_GOLDEN:
        path.write_text(actual, encoding="utf-8")
    assert path.exists(), f"missing golden {path}: run with DIGEST_UPDATE_GOLDEN=1"
    assert actual == path.read_text(encoding="utf-8"), (
        f"{name} differs from its golden; if intended, update with DIGEST_UPDATE_GOLDEN=1"
    )


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    @classmethod
    def of(cls, html: str) -> Tags:
        parser = cls()
        parser.feed(html)
        return parser


def test_render_html_matches_golden() -> None:
    assert_golden("digest.html", fixed_render().html)


def test_render_text_matches_golden() -> None:
    assert_golden("digest.txt", fixed_render().text)


def test_render_html_is_accessible() -> None:
    rendered = fixed_render()
    tags = Tags.of(rendered.html)
    assert re.search(r'<html lang="en"', rendered.html)
    images = [attrs for tag, attrs in tags.tags if tag == "img"]
    assert len(images) == 2
    assert images[0]["alt"] == "A solar lantern on a lighthouse gallery at dusk"
    assert images[1]["alt"] == "City library lends out telescopes"  # no alt given: the headline
    assert [t for t, _ in tags.tags].count("h1") == 1
    assert [t for t, _ in tags.tags].count("h2") == 3
    assert 'name="color-scheme"' in rendered.html
    assert "prefers-color-scheme: dark" in rendered.html
    assert "fonts.googleapis" not in rendered.html


def test_render_footer_links_unsubscribe_preferences_archive_and_address() -> None:
    rendered = fixed_render()
    hrefs = [a.get("href") for t, a in Tags.of(rendered.html).tags if t == "a"]
    assert rendered.placeholders["unsubscribe_url"] in hrefs
    assert rendered.placeholders["preferences_url"] in hrefs
    assert f"{BASE_URL}/archive/42" in hrefs
    assert "1 Harbour Road" in rendered.html and "1 Harbour Road" in rendered.text
    for field in ("unsubscribe_url", "preferences_url"):
        assert rendered.placeholders[field] in rendered.text
    assert f"{BASE_URL}/archive/42" in rendered.text


def test_render_preheader_lists_top_headlines_then_padding() -> None:
    rendered = fixed_render()
    hidden = re.search(r'<div style="display:none;[^"]*">(.*?)</div>', rendered.html, re.S)
    assert hidden is not None
    assert hidden.group(1).startswith(
        "Lighthouse keepers adopt solar lanterns · City library lends out telescopes"
    )
    assert hidden.group(1).count("\u200c") >= 50


def test_render_text_fits_72_columns_and_lists_links() -> None:
    text = fixed_render(fixed_view(10)).text
    long_lines = [ln for ln in text.splitlines() if len(ln) > 72 and "://" not in ln]
    assert long_lines == []
    assert "Read more: https://example.org/lighthouses" in text
    assert "https://example.org/solar-report" in text


INJECTIONS = [
    "<script>alert(1)</script>",
    "{{ 7 * 7 }} {% if true %}x{% endif %}",
    "</mj-text><mj-raw><script>alert(2)</script></mj-raw><mj-text>",
    "Fish & chips < 5 > 3 &amp; &lt;",
    '"><img src=x onerror=alert(3)>',
]


@pytest.mark.parametrize("payload", INJECTIONS)
def test_render_story_markup_renders_as_text(payload: str) -> None:
    story = StoryView(payload, payload, (payload,), "https://example.org/x")
    rendered = fixed_render(fixed_view(stories=(story,)))
    tags = Tags.of(rendered.html)
    assert "script" not in {t for t, _ in tags.tags}
    assert not any(t == "img" and "onerror" in a for t, a in tags.tags)
    visible = "".join(tags.text)
    assert payload in visible
    assert "49" not in visible
    assert payload in rendered.text


def test_render_rejects_an_image_url_that_is_not_http() -> None:
    story = StoryView("H", "S", (), None, image_url="javascript:alert(1)")
    rendered = fixed_render(fixed_view(stories=(story,)))
    assert "javascript:" not in rendered.html


def test_render_templates_dir_overrides_one_template_and_falls_back(tmp_path: Path) -> None:
    (tmp_path / "digest.txt").write_text(
        "Custom {{ newsletter }} for {{ recipient.name }}\n", encoding="utf-8"
    )
    rendered = render(fixed_view(), newsletter="N", base_url=BASE_URL, override_dir=tmp_path)
    assert rendered.text.startswith("Custom N for @@")
    assert "Lighthouse keepers adopt solar lanterns" in rendered.html  # built-in MJML


def test_render_undefined_variable_in_override_is_a_render_error(tmp_path: Path) -> None:
    (tmp_path / "digest.txt").write_text("{{ no_such_thing }}\n", encoding="utf-8")
    with pytest.raises(RenderError, match="no_such_thing"):
        render(fixed_view(), newsletter="N", base_url=BASE_URL, override_dir=tmp_path)


def test_render_broken_mjml_override_is_a_render_error(tmp_path: Path) -> None:
    (tmp_path / "digest.mjml").write_text("<mjml><mj-body><p>unclosed", encoding="utf-8")
    with pytest.raises(RenderError, match="MJML"):
        render(fixed_view(), newsletter="N", base_url=BASE_URL, override_dir=tmp_path)


def test_render_lang_comes_from_the_setting() -> None:
    rendered = render(fixed_view(), newsletter="N", base_url=BASE_URL, lang="de")
    assert '<html lang="de"' in rendered.html


def test_render_ten_stories_stay_under_gmail_clipping() -> None:
    assert len(fixed_render(fixed_view(10, fixed_stories(10))).html.encode()) < 102 * 1024

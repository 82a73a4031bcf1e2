"""The digest in headless Chromium (Debian's chromium, driven by playwright): phone and desktop.

`make test` installs Debian's chromium when missing. Without it the test is
skipped locally, and fails on CI (CI=true), where the browser must be present.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fixed_edition import fixed_factory, fixed_stories, fixed_view

from digest.mail.message import Recipient, parts_of


@pytest.fixture(scope="module")
def digest_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    factory = fixed_factory(fixed_view(stories=fixed_stories(10)))
    _, html = parts_of(factory.build(Recipient(1, "ada@example.com", "Ada Lovelace")))
    path = tmp_path_factory.mktemp("browser") / "digest.html"
    path.write_text(html, encoding="utf-8")
    return path


@pytest.mark.parametrize("width", [375, 800])
def test_browser_digest_fits_the_width_and_shows_every_headline(
    chromium: Any, digest_file: Path, width: int
) -> None:
    from playwright.sync_api import Route

    page = chromium.new_page(viewport={"width": width, "height": 900})
    external: list[str] = []

    def local_only(route: Route) -> None:
        if route.request.url.startswith("file://"):
            route.continue_()
        else:  # images and anything else remote: never fetched
            external.append(route.request.url)
            route.abort()

    page.route("**/*", local_only)
    page.goto(digest_file.as_uri())
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    inner_width = page.evaluate("window.innerWidth")
    assert scroll_width <= inner_width, f"horizontal scrolling at {width}px"
    for story in fixed_stories(10):
        heading = page.get_by_role("heading", name=story.headline, exact=True)
        assert heading.is_visible(), story.headline
        box = heading.bounding_box()
        assert box is not None
        assert box["x"] >= 0 and box["x"] + box["width"] <= inner_width, story.headline
    assert all(url.startswith("https://images.example.org/") for url in external)
    page.close()

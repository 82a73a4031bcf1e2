"""The operator console in headless Chromium on a real server: editing, deleting and sending
an edition, its figures, phone widths, and axe-core's WCAG 2 A/AA rules in light and dark.

Debian's chromium through playwright (the `chromium` fixture); axe-core from `make axe`
or fetched with npm into the session's temporary folder (tests/axe_core.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
from axe_core import find_or_fetch, violations
from conftest import ON_CI, Captured, Cli
from test_pages_browser import PAGES
from test_web_browser import served

from subscribers.tokens import make_token

STORIES = [
    {"headline": "Alpha rail line opens", "summary": "Trains run north from Monday."},
    {"headline": "Bravo bridge repaired", "summary": "Cars cross the river again."},
    {"headline": "Charlie library extends hours", "summary": "Open until ten on weekdays."},
]
PHONE = {"width": 375, "height": 800}


@pytest.fixture(scope="session")
def axe_script(tmp_path_factory: pytest.TempPathFactory) -> str:
    found = find_or_fetch(tmp_path_factory.mktemp("axe"))
    if found is None:
        if ON_CI:
            pytest.fail("axe-core missing on CI: `make axe` installs it")
        pytest.skip("axe-core not available: run `make axe` (needs npm)")
    return found.read_text(encoding="utf-8")


@pytest.fixture
def console(ready: Cli, tmp_path: Path) -> Cli:
    for n, story in enumerate(STORIES):
        path = tmp_path / f"story{n}.json"
        path.write_text(json.dumps(story), encoding="utf-8")
        ready("stories", "import", str(path))
    ready("subscribers", "add", "reader@example.com", "--name", "Reader One")
    return ready


def local_page(chromium: Any, base: str, **context: Any) -> Any:
    """A page in a fresh browser context that fetches nothing but ``base``."""
    page = chromium.new_context(**context).new_page()

    def local_only(route: Any) -> None:
        if route.request.url.startswith(base):
            route.continue_()
        else:
            route.abort()

    page.route("**/*", local_only)
    return page


@pytest.fixture
def site(console: Cli) -> Iterator[tuple[str, Any]]:
    with served(console) as (base, factory):
        yield base, factory


def test_console_edit_delete_send_and_figures(
    chromium: Any, console: Cli, site: tuple[str, Any], captured: Captured, artifacts: Path
) -> None:
    base, _ = site
    page = local_page(chromium, base, viewport={"width": 1280, "height": 1000})
    page.goto(f"{base}/editions")
    page.click("text=Build an edition from them")
    page.wait_for_url(f"{base}/editions/1")
    assert "0 of 0" not in page.inner_text("main")
    page.get_by_role("link", name="Edit", exact=True).click()
    page.fill("#subject", "Our special subject")
    page.fill("#intro", "Welcome to **this week**.")
    page.get_by_label("Position of Alpha rail line opens").fill("1")
    page.get_by_label("Position of Charlie library extends hours").fill("3")
    page.get_by_label("Remove Bravo bridge repaired").check()
    page.screenshot(path=str(artifacts / "editor.png"), full_page=True)
    page.click("text=Save")
    page.wait_for_url(f"{base}/editions/1")
    assert page.locator("main ol li").all_inner_texts() == [
        "Alpha rail line opens",
        "Charlie library extends hours",
    ]

    page.goto(f"{base}/editions/1/preview")
    frame = page.frame_locator("#email-frame")
    frame.get_by_text("this week").wait_for(timeout=5000)
    assert frame.get_by_role("heading", name="Bravo bridge repaired").count() == 0
    assert "Our special subject" in page.inner_text(".inbox")

    # The removed story waits for the next edition: build it, then delete that draft.
    page.goto(f"{base}/editions")
    assert "1 new story waiting" in page.inner_text("main")
    page.click("text=Build an edition from them")
    page.wait_for_url(f"{base}/editions/2")
    page.click("text=Delete draft")
    page.wait_for_url(f"{base}/editions")
    assert "1 new story waiting" in page.inner_text("main")
    assert page.locator("a[href='/editions/2']").count() == 0

    page.goto(f"{base}/editions/1")
    page.click("text=Send to subscribers…")
    page.wait_for_url(f"{base}/editions/1/send")
    assert "This mails 1 active subscriber" in page.inner_text("main")
    page.screenshot(path=str(artifacts / "confirm.png"), full_page=True)
    page.get_by_role("button", name="Send to 1").click()
    page.wait_for_url(f"{base}/editions/1")
    assert page.get_by_text("Send to subscribers…").count() == 0  # started: no send button
    console("worker", "--once")
    page.goto(f"{base}/editions/1")
    figures = page.inner_text("dl.figures")
    page.screenshot(path=str(artifacts / "figures.png"), full_page=True)
    page.context.close()

    assert "Our special subject" in figures and "Finished" in figures
    assert page_figure(figures, "Sent") == "1" and page_figure(figures, "Failed") == "0"
    assert len(captured.envelopes) == 1
    msg = message_from_bytes(captured.envelopes[0][2], policy=policy.default)
    assert str(msg["Subject"]) == "Our special subject"
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Welcome to this week." in text and "Bravo bridge" not in text
    assert text.index("Alpha rail") < text.index("Charlie library")


def page_figure(figures: str, name: str) -> str:
    lines = [line.strip() for line in figures.splitlines() if line.strip()]
    return lines[lines.index(name) + 1]


def console_pages(console: Cli, base: str) -> list[str]:
    """One URL of every operator and subscriber page, with an edition of each kind."""
    console("send", "--now")  # edition 1, finished; then a draft to edit and send
    key = console.settings().signing_key()
    for n, story in enumerate(STORIES):
        path = console.cwd / f"more{n}.json"
        path.write_text(json.dumps({**story, "headline": story["headline"] + " again"}))
        console("stories", "import", str(path))
    console("edition", "build")
    return [
        "/editions",
        "/editions/1",
        "/editions/2",
        "/editions/2/edit",
        "/editions/2/send",
        "/editions/2/preview",
        "/preview/next",
        "/archive",
        "/archive/1",
        "/editions/999",
        *PAGES,  # subscribers, stories, feeds, schedule, API reference
        "/login",
        "/subscribe",
        f"/preferences/{make_token(key, 'preferences', 1)}",
        f"/unsubscribe/{make_token(key, 'unsubscribe', 1)}",
    ]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_console_pages_have_no_wcag_violations_and_no_scroll_at_375(
    chromium: Any,
    console: Cli,
    site: tuple[str, Any],
    axe_script: str,
    scheme: str,
    artifacts: Path,
) -> None:
    base, _ = site
    found: dict[str, list[str]] = {}
    wide: dict[str, int] = {}
    for path in console_pages(console, base):
        for viewport in ({"width": 1280, "height": 900}, PHONE):
            page = local_page(
                chromium, base, viewport=viewport, color_scheme=scheme, bypass_csp=True
            )
            page.goto(base + path)
            name = path.strip("/").replace("/", "_")[:40] or "home"
            page.screenshot(path=str(artifacts / f"{name}-{viewport['width']}.png"))
            if viewport is PHONE:
                width = int(page.evaluate("document.documentElement.scrollWidth"))
                if width > PHONE["width"]:
                    wide[path] = width
            else:
                problems = violations(page, axe_script)
                if problems:
                    found[path] = problems
            page.context.close()
    assert not found, json.dumps(found, indent=1, ensure_ascii=False)
    assert not wide, wide


def test_console_light_preview_stays_light_under_a_dark_system(
    chromium: Any, site: tuple[str, Any]
) -> None:
    base, _ = site
    page = local_page(chromium, base, viewport={"width": 1280, "height": 1000}, color_scheme="dark")
    page.goto(f"{base}/preview/next")
    light = page.frame_locator("#email-frame")
    heading = light.get_by_role("heading", name=STORIES[0]["headline"], exact=True)
    heading.wait_for(timeout=5000)
    light_colour = heading.evaluate("e => getComputedStyle(e).color")
    page.click("label[for=dark]")
    dark = page.frame_locator("#email-frame-dark")
    dark_heading = dark.get_by_role("heading", name=STORIES[0]["headline"], exact=True)
    dark_heading.wait_for(timeout=5000)
    dark_colour = dark_heading.evaluate("e => getComputedStyle(e).color")
    page.context.close()
    assert light_colour == "rgb(16, 42, 67)", light_colour  # the email's light headline colour
    assert dark_colour == "rgb(230, 233, 238)", dark_colour

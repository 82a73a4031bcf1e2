"""The operator preview, the archive and cross-site forms in headless Chromium, on a real server.

Debian's chromium driven by playwright (the `chromium` fixture in conftest): skipped
locally when it is missing, a failure on CI (CI=true). Screenshots land in
var/test-artifacts/.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import REFERENCE_STORY, Captured, Cli
from sqlalchemy import func, select
from sqlalchemy.pool import NullPool
from web_operator import SCRIPT_STORY, wait_for_status, with_stories

from digest.core.db import make_engine, session_factory
from digest.core.models import Edition
from digest.core.status import EditionStatus
from digest.processes.sink import free_port
from subscribers.models import Subscriber
from subscribers.tokens import make_token

HEADLINES = [REFERENCE_STORY.read_text().splitlines()[0].strip(), SCRIPT_STORY["headline"]]


@contextmanager
def served(cli: Cli) -> Iterator[tuple[str, Any]]:
    """A real `digest serve` on 127.0.0.1 (a process of its own, the operator's command),
    and a session factory on its database.

    The factory's engine keeps no pool: tests read the database after the server has
    stopped, and a pooled connection would outlive the engine's disposal."""
    settings = cli.settings()
    engine = make_engine(settings.effective_database_url, poolclass=NullPool)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "digest", "serve", "--port", str(port)],
        env={**os.environ, **cli.env},
        cwd=cli.cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=1):
                break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                _, err = server.communicate()
                output = err.decode()[-2000:]
                raise AssertionError(f"digest serve did not start: {output}") from None
            time.sleep(0.05)
    try:
        yield base, session_factory(engine)
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        assert server.stderr is not None
        server.stderr.close()
        engine.dispose()


def new_page(chromium: Any, base: str) -> Any:
    page = chromium.new_page(viewport={"width": 1280, "height": 1000})

    def local_only(route: Any) -> None:
        if route.request.url.startswith(base):
            route.continue_()
        else:  # remote images and the like are never fetched
            route.abort()

    page.route("**/*", local_only)
    return page


def frame_width(page: Any) -> float:
    return float(page.eval_on_selector("#email-frame", "e => e.getBoundingClientRect().width"))


@pytest.fixture
def site(ready: Cli, tmp_path: Path) -> Cli:
    with_stories(ready, "reader@example.com")
    story = tmp_path / "evil.json"
    import json

    story.write_text(json.dumps(SCRIPT_STORY), encoding="utf-8")
    ready("stories", "import", str(story))
    return ready


def test_browser_preview_shows_every_headline_and_toggles_without_script(
    chromium: Any, site: Cli, artifacts: Path
) -> None:
    with served(site) as (base, _):
        page = new_page(chromium, base)
        page.goto(f"{base}/preview/next")
        frame = page.frame_locator("#email-frame")
        for headline in HEADLINES:
            frame.get_by_role("heading", name=headline, exact=True).wait_for(timeout=5000)
        page.screenshot(path=str(artifacts / "preview-desktop.png"), full_page=True)
        assert frame_width(page) == 800

        page.click("label[for=w-mobile]")
        assert frame_width(page) == 375
        inner = page.frames[1]
        scroll = inner.evaluate("document.documentElement.scrollWidth")
        assert scroll <= 375, "horizontal scrolling at 375 px"
        page.screenshot(path=str(artifacts / "preview-mobile.png"), full_page=True)

        page.click("label[for=dark]")
        dark = page.locator("#email-frame-dark")
        assert dark.is_visible() and not page.locator("#email-frame").is_visible()
        dark_frame = page.frame_locator("#email-frame-dark")
        heading = dark_frame.get_by_role("heading", name=HEADLINES[0], exact=True)
        heading.wait_for(timeout=5000)
        color = heading.evaluate("e => getComputedStyle(e).color")
        assert color == "rgb(230, 233, 238)", color  # the email's own dark-mode text colour
        page.screenshot(path=str(artifacts / "preview-dark.png"), full_page=True)

        page.click("label[for=w-desktop]")
        assert dark.evaluate("e => e.getBoundingClientRect().width") == 800

        page.click("label[for=tab-text]")
        text = page.locator("#email-text")
        assert text.is_visible() and "US, Israel Show Signs" in text.inner_text()
        assert not page.locator("#email-frame-dark").is_visible()

        # The story's <script> and onerror handlers ran nowhere.
        assert page.evaluate("typeof window.__pwned") == "undefined"
        for each in page.frames:
            assert each.evaluate("typeof window.__pwned") == "undefined", each.url
        page.close()


def test_browser_archive_shows_a_sent_edition(
    chromium: Any, site: Cli, captured: Captured, artifacts: Path
) -> None:
    site("send", "--now")
    with served(site) as (base, factory):
        assert wait_for_status(factory, 1, EditionStatus.FINISHED) == EditionStatus.FINISHED
        page = new_page(chromium, base)
        page.goto(f"{base}/archive")
        page.click("a[href='/archive/1']")
        page.wait_for_url(f"{base}/archive/1")
        for headline in HEADLINES:
            page.get_by_role("heading", name=headline, exact=True).wait_for(timeout=5000)
        assert page.evaluate("typeof window.__pwned") == "undefined"
        page.screenshot(path=str(artifacts / "archive.png"), full_page=True)
        page.close()
    assert len(captured.envelopes) == 1


ATTACKER = "http://attacker.example"


def attacker_page(chromium: Any, base: str, html: str) -> Any:
    """A page on another site (served by the browser itself) whose forms post to ``base``."""
    page = chromium.new_page()

    def route(route: Any) -> None:
        if route.request.url.startswith(ATTACKER):
            route.fulfill(status=200, content_type="text/html", body=html)
        elif route.request.url.startswith(base):
            route.continue_()
        else:
            route.abort()

    page.route("**/*", route)
    page.goto(f"{ATTACKER}/")
    return page


def test_browser_operator_forms_pass_the_cross_site_guard(chromium: Any, site: Cli) -> None:
    with served(site) as (base, factory):
        page = new_page(chromium, base)
        page.goto(f"{base}/editions")
        page.click("text=Build an edition from them")
        page.wait_for_url(f"{base}/editions/1")
        page.click("button.danger")  # Cancel
        page.wait_for_url(f"{base}/editions/1")
        page.close()
        assert wait_for_status(factory, 1, EditionStatus.CANCELLED) == EditionStatus.CANCELLED


def test_browser_forms_on_another_site_cannot_write_but_may_subscribe_and_one_click(
    chromium: Any, site: Cli, captured: Captured
) -> None:
    token = make_token(site.settings().signing_key(), "unsubscribe", 1)
    html = f"""<!doctype html><title>evil</title>
    <form id="api" method="post" action="BASE/api/editions"><button>api</button></form>
    <form id="page" method="post" action="BASE/editions"><button>page</button></form>
    <form id="sub" method="post" action="BASE/subscribe">
      <input name="email" value="fan@example.org"><button>sub</button></form>
    <form id="out" method="post" action="BASE/unsubscribe/{token}">
      <input type="hidden" name="List-Unsubscribe" value="One-Click"><button>out</button></form>
    """
    with served(site) as (base, factory):
        answers = {}
        for form in ("api", "page", "sub", "out"):
            page = attacker_page(chromium, base, html.replace("BASE", base))
            with page.expect_navigation() as navigation:
                page.click(f"#{form} button")
            response = navigation.value
            answers[form] = (response.status, page.content())
            page.close()
        with factory() as s:
            editions = s.scalar(select(func.count()).select_from(Edition))
            statuses = dict(s.execute(select(Subscriber.email, Subscriber.status)).all())
    assert answers["api"][0] == 403 and "cross-site request refused" in answers["api"][1]
    assert answers["page"][0] == 403
    assert answers["sub"][0] == 200 and "Check your inbox" in answers["sub"][1]
    assert answers["out"][0] == 200 and "You are unsubscribed" in answers["out"][1]
    assert editions == 0
    assert statuses == {"reader@example.com": "unsubscribed", "fan@example.org": "pending"}
    assert [rcpt for _, [rcpt], _ in captured.envelopes] == ["fan@example.org"]


def test_browser_subscriber_forms_pass_the_cross_site_guard(chromium: Any, site: Cli) -> None:
    token = make_token(site.settings().signing_key(), "preferences", 1)
    with served(site) as (base, factory):
        page = new_page(chromium, base)
        page.goto(f"{base}/preferences/{token}")
        page.fill("#name", "Reader One")
        page.click("text=Save")
        page.get_by_text("Saved.").wait_for(timeout=5000)
        page.click("text=Pause (no editions until you resume)")
        page.get_by_text("Paused: no editions until you resume.").wait_for(timeout=5000)
        page.goto(f"{base}/subscribe")
        page.fill("#email", "new@example.org")
        page.get_by_role("button", name="Subscribe").click()
        page.get_by_text("Check your inbox").wait_for(timeout=5000)
        page.close()
        with factory() as s:
            rows = s.execute(select(Subscriber.email, Subscriber.name, Subscriber.status)).all()
    assert sorted(map(tuple, rows)) == [
        ("new@example.org", "", "pending"),
        ("reader@example.com", "Reader One", "paused"),
    ]

"""Operator and public pages: the archive's web footer and robots, error pages that keep the
stylesheet, per-edition figures with the unsubscribes an edition caused."""

from __future__ import annotations

from datetime import timedelta

from conftest import Cli
from subscriber_web import web_app
from web_operator import with_stories

from digest.core.db import utcnow
from subscribers.models import Subscriber


def test_archive_web_version_has_its_own_footer_and_is_indexable(ready: Cli) -> None:
    with_stories(ready, "reader@example.com")
    ready("send", "--now")
    with web_app(ready) as web:
        page = web.client.get("/archive/1")
        listing = web.client.get("/archive")
    assert page.status_code == 200
    assert "You are reading the web version of" in page.text
    assert "Other editions" in page.text and "/archive" in page.text
    assert "you subscribed to it" not in page.text and "Unsubscribe" not in page.text
    assert "Preferences" not in page.text
    assert "Your topics" not in page.text and "Change them" not in page.text
    assert "X-Robots-Tag" not in page.headers and "X-Robots-Tag" not in listing.headers
    assert '<meta name="robots" content="index, follow">' in listing.text


def test_archive_noindex_setting_asks_search_engines_to_stay_away(ready: Cli) -> None:
    with_stories(ready, "reader@example.com")
    ready("send", "--now")
    with web_app(ready, archive_noindex=True) as web:
        answers = [web.client.get(p) for p in ("/archive", "/archive/1", "/archive/feed.xml")]
    assert [a.headers.get("X-Robots-Tag") for a in answers] == ["noindex"] * 3
    assert '<meta name="robots" content="noindex">' in answers[0].text


def test_error_pages_may_load_the_app_stylesheet(ready: Cli) -> None:
    with web_app(ready) as web:
        missing = web.client.get("/editions/77")
        bad = web.client.get("/editions/x")
    for answer in (missing, bad):
        csp = answer.headers["Content-Security-Policy"]
        assert "style-src 'self'" in csp and "script-src" not in csp
        assert '<link rel="stylesheet" href="/static/app.css">' in answer.text
        assert '<header class="top">' in answer.text
    assert missing.status_code == 404 and bad.status_code == 400


def test_edition_figures_count_sent_and_the_unsubscribes_that_followed(ready: Cli) -> None:
    with_stories(ready, "stays@example.com", "leaves@example.com", "left@example.com")
    with web_app(ready) as web, web.factory.begin() as s:  # left before: never counted
        early = s.query(Subscriber).filter_by(email="left@example.com").one()
        early.status, early.unsubscribed_at = "unsubscribed", utcnow() - timedelta(days=1)
    ready("send", "--now")
    ready("subscribers", "unsubscribe", "leaves@example.com")
    with web_app(ready) as web:
        page = web.client.get("/editions/1").text
        listing = web.client.get("/editions").text
    assert "<h2>Figures</h2>" in page
    assert '<dd class="fig-sent">2</dd>' in page
    assert '<dd class="fig-unsubscribed">1</dd>' in page
    assert "UTC" in page and "<dt>Duration</dt>" in page
    assert '<div class="scroll">' in listing

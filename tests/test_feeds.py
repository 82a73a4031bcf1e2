"""`digest feeds`: real HTTP fetches from a server on 127.0.0.1 serving tests/feeds/."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Cli
from feed_server import FeedServer, serve_feeds


@pytest.fixture
def server(ready: Cli) -> Iterator[FeedServer]:
    """The feed server on 127.0.0.1, which these tests may reach (a private address)."""
    ready.env["DIGEST_FEED_ALLOW_PRIVATE"] = "true"
    with serve_feeds() as running:
        yield running


def new_stories(cli: Cli) -> list[dict[str, Any]]:
    return json.loads(cli("stories", "list", "--new", "--json").output)


def all_stories(cli: Cli) -> list[dict[str, Any]]:
    return json.loads(cli("stories", "list", "--json").output)


def feed_rows(cli: Cli) -> list[dict[str, Any]]:
    return json.loads(cli("feeds", "list", "--json").output)


def test_feeds_add_marks_existing_items_seen_so_the_next_digest_is_not_flooded(
    ready: Cli, server: FeedServer
) -> None:
    out = ready("feeds", "add", server.url("rss2.xml")).output
    assert f"following feed 1: {server.url('rss2.xml')}" in out
    assert "0 new, 3 existing items marked seen" in out
    assert new_stories(ready) == []
    assert "not modified" in ready("feeds", "fetch").output
    assert new_stories(ready) == []


def test_feeds_add_backfill_takes_the_newest_items_newest_first(
    ready: Cli, server: FeedServer
) -> None:
    ready("feeds", "add", server.url("rss2.xml"), "--backfill", "2", "--tags", "City,news")
    stories = new_stories(ready)
    assert [s["headline"] for s in stories] == [
        "Night market returns to the square",
        "Library extends weekend hours",
    ]
    market = stories[0]
    assert market["image_url"] == "https://example.org/img/market.jpg"
    assert market["source"] == server.url("rss2.xml")
    assert market["source_guid"] == "wire-1003"
    assert market["tags"] == ["city", "news"]
    assert market["published_at"] == "2026-11-19T08:00:00+00:00"


def test_feeds_fetch_sanitizes_feed_html(ready: Cli, server: FeedServer) -> None:
    ready("feeds", "add", server.url("rss2.xml"), "--backfill", "3")
    by_headline = {s["headline"]: s for s in all_stories(ready)}
    library = by_headline["Library extends weekend hours"]
    assert library["summary"] == "Open until 8 pm on Saturdays."
    assert "script" not in library["body"] and "onerror" not in library["body"]
    bridge = by_headline["Harbour bridge reopens after repairs"]
    assert bridge["body"] == "The bridge carries traffic again after <b>six weeks</b> of work."


@pytest.mark.parametrize(
    ("fixture", "headlines"),
    [
        ("atom.xml", ["Tram line gets new timetable", "Park cleanup on Sunday"]),
        ("rdf.xml", ["Ferry adds a late sailing"]),
    ],
    ids=["atom-1.0", "rss-1.0-rdf"],
)
def test_feeds_fetch_reads_atom_and_rdf(
    ready: Cli, server: FeedServer, fixture: str, headlines: list[str]
) -> None:
    ready("feeds", "add", server.url(fixture), "--backfill", "10")
    assert [s["headline"] for s in new_stories(ready)] == headlines
    if fixture == "atom.xml":
        park = new_stories(ready)[1]
        assert park["url"] == "https://example.org/atom/park"
        assert '<a href="https://example.org/volunteer"' in park["body"]


def test_feeds_fetch_decodes_entities_and_cdata(ready: Cli, server: FeedServer) -> None:
    ready("feeds", "add", server.url("entities.xml"), "--backfill", "1")
    [story] = new_stories(ready)
    assert story["headline"] == "Café & bakery “opens”"
    assert story["summary"] == "Fresh bread & coffee from 7 am."
    assert "<strong>coffee</strong>" in story["body"]
    assert "iframe" not in story["body"]


def test_feeds_fetch_resolves_relative_links_against_the_feed_url(
    ready: Cli, server: FeedServer
) -> None:
    ready("feeds", "add", server.url("relative.xml"), "--backfill", "1")
    [story] = new_stories(ready)
    assert story["url"] == server.url("stories/museum.html")
    assert f'href="{server.url("stories/museum-photos.html")}"' in story["body"]


def test_feeds_fetch_updates_a_changed_item_until_its_edition_is_sent(
    ready: Cli, server: FeedServer
) -> None:
    ready("feeds", "add", server.url("changing.xml"), "--backfill", "5")
    assert [s["headline"] for s in all_stories(ready)] == ["Council votes on budget"]
    server.version = 2
    out = ready("feeds", "fetch").output
    assert "1 new, 1 updated" in out
    headlines = [s["headline"] for s in new_stories(ready)]
    assert headlines == ["Snow expected this weekend", "Council passes budget"]
    ready("subscribers", "add", "reader@example.com")
    ready("edition", "build")
    ready("send")
    server.version = 1
    assert "0 new" in ready("feeds", "fetch").output
    assert sorted(s["headline"] for s in all_stories(ready)) == [
        "Council passes budget",
        "Snow expected this weekend",
    ]


def test_feeds_fetch_sends_conditional_get_and_handles_304(ready: Cli, server: FeedServer) -> None:
    ready("feeds", "add", server.url("rss2.xml"))
    out = ready("feeds", "fetch", "1").output
    assert out == f"feed 1 {server.url('rss2.xml')}: not modified\n"
    first, second = server.requests
    assert "If-None-Match" not in first
    assert second["If-None-Match"].startswith('"')
    assert first["User-Agent"].startswith("digest/")
    assert "(+http://127.0.0.1:8000)" in first["User-Agent"]
    [row] = feed_rows(ready)
    assert row["last_success_at"] is not None and row["last_error"] is None


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("status/404", "HTTP 404 Not Found"),
        ("status/500", "HTTP 500 Internal Server Error"),
        ("page.html", "not a feed: the server sent an HTML page, not RSS/Atom XML"),
        ("slow", "timed out after 0.5 s"),
        ("loop", "more than 5 redirects (a loop?)"),
        ("big", "response larger than 100000 bytes"),
        ("missing.xml", "HTTP 404 Not Found"),
    ],
    ids=["404", "500", "html", "timeout", "redirect-loop", "oversized", "missing"],
)
def test_feeds_fetch_failure_is_recorded_and_other_feeds_still_fetch(
    ready: Cli, server: FeedServer, path: str, problem: str
) -> None:
    # Only the slow feed needs a short timeout; the others get a generous one
    # so a loaded machine cannot turn their failure into a timeout.
    timeout = "0.5" if path == "slow" else "30"
    ready.env |= {"DIGEST_FEED_TIMEOUT": timeout, "DIGEST_FEED_MAX_BYTES": "100000"}
    added = ready("feeds", "add", server.url(path))
    assert f"failed: {server.url(path)}: {problem}" in added.output
    ready("feeds", "add", server.url("changing.xml"))
    server.version = 2
    result = ready("feeds", "fetch", ok=False)
    assert result.exit_code == 1
    assert f"feed 1 {server.url(path)}: failed: {server.url(path)}: {problem}" in result.output
    assert f"feed 2 {server.url('changing.xml')}: 1 new" in result.output
    assert result.output.endswith("Error: 1 feed failed (see `digest feeds list`)\n")
    bad, good = feed_rows(ready)
    assert bad["last_error"] == problem and bad["last_success_at"] is None
    assert good["last_error"] is None and good["last_success_at"] is not None
    assert [s["headline"] for s in new_stories(ready)] == ["Snow expected this weekend"]


def test_feeds_fetch_skips_items_without_title_or_link_and_says_which(
    ready: Cli, server: FeedServer
) -> None:
    out = ready("feeds", "add", server.url("incomplete.xml"), "--backfill", "5").output
    assert "1 new, 2 bad items skipped" in out
    assert [s["headline"] for s in new_stories(ready)] == ["A complete item"]
    [row] = feed_rows(ready)
    assert row["last_error"] == (
        "2 item(s) skipped: item 1: no title; item 2: no link ('A title without a link')"
    )


def test_feeds_and_files_dedupe_by_canonical_url(
    ready: Cli, server: FeedServer, tmp_path: Path
) -> None:
    (tmp_path / "bridge.json").write_text(
        json.dumps(
            {
                "headline": "Bridge open again",
                "summary": "Our own words about it.",
                "url": "HTTPS://EXAMPLE.org/news/bridge/#top",
            }
        ),
        encoding="utf-8",
    )
    ready("stories", "import", "bridge.json")
    ready("feeds", "add", server.url("rss2.xml"), "--backfill", "3")
    headlines = sorted(s["headline"] for s in all_stories(ready))
    assert headlines == [
        "Bridge open again",
        "Library extends weekend hours",
        "Night market returns to the square",
    ]


def test_feeds_add_twice_and_remove(ready: Cli, server: FeedServer) -> None:
    url = server.url("rss2.xml")
    ready("feeds", "add", url, "--name", "Wire")
    again = ready("feeds", "add", url, ok=False)
    assert again.exit_code == 1
    assert again.output == f"Error: feed {url} is already followed (see `digest feeds list`)\n"
    assert "(Wire)" in ready("feeds", "list").output
    assert ready("feeds", "remove", url).output == f"removed feed 1: {url}\n"
    assert feed_rows(ready) == []
    assert ready("feeds", "list").output == "no feeds followed\n"
    gone = ready("feeds", "remove", "1", ok=False)
    assert gone.output == "Error: no feed '1' (see `digest feeds list`)\n"


def test_feeds_add_rejects_a_url_that_is_not_http_or_file(ready: Cli) -> None:
    result = ready("feeds", "add", "ftp://example.org/feed.xml", ok=False)
    assert result.exit_code == 1
    assert result.output == (
        "Error: ftp://example.org/feed.xml: feed URL must start with http://, https:// or file://\n"
    )


def test_feeds_add_json_reports_the_first_fetch(ready: Cli, server: FeedServer) -> None:
    out = json.loads(ready("feeds", "add", server.url("rss2.xml"), "--json").output)
    assert out["feed_id"] == 1 and out["skipped"] == 3 and out["added"] == 0
    assert out["error"] is None


def test_stories_list_shows_pin_and_tags(ready: Cli, tmp_path: Path) -> None:
    (tmp_path / "pinned.md").write_text(
        "---\ntitle: Pinned story\nsummary: It stays on top.\npriority: 5\ntags: [city, news]\n"
        "---\nBody.\n",
        encoding="utf-8",
    )
    ready("stories", "import", str(tmp_path / "pinned.md"))
    assert "Pinned story [pinned 5] #city #news" in ready("stories", "list").output

"""The operator's feeds page: follow (SSRF-safe, never file://), fetch now, remove, with
real fetches from a feed server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Cli
from feed_server import FeedServer, serve_feeds
from sqlalchemy import func, select
from subscriber_web import web_app
from web_operator import csrf

from digest.core.models import Feed, Story


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with serve_feeds() as running:
        yield running


def counts(web: object) -> tuple[int, int]:
    with web.factory() as s:  # type: ignore[attr-defined]
        feeds = s.scalar(select(func.count()).select_from(Feed)) or 0
        stories = s.scalar(select(func.count()).select_from(Story)) or 0
    return feeds, stories


def test_feeds_page_empty_state(ready: Cli) -> None:
    with web_app(ready) as web:
        page = web.client.get("/feeds")
    assert page.status_code == 200 and "No feeds followed yet" in page.text


def test_feeds_page_follow_fetch_and_remove(ready: Cli, server: FeedServer) -> None:
    with web_app(ready, feed_allow_private="true") as web:
        c = web.client
        token = csrf(c, "/feeds")
        url = server.url("rss2.xml")
        added = c.post("/feeds", data={"csrf": token, "url": url, "backfill": "2", "tags": "city"})
        after_add = counts(web)
        listed = c.get("/feeds").text
        fetched = c.post("/feeds/1/fetch", data={"csrf": token})
        removed = c.post("/feeds/1/remove", data={"csrf": token}, follow_redirects=True)
        after_remove = counts(web)
    assert added.status_code == 200
    assert f"Following. feed 1 {url}: 2 new, 1 existing items marked seen" in added.text
    assert after_add == (1, 2)
    assert f"<code>{url}</code>" in listed and "never" not in listed  # a last success
    assert fetched.status_code == 200 and "not modified" in fetched.text
    assert "no longer followed" in removed.text and "No feeds followed yet" in removed.text
    assert after_remove == (0, 2)  # its stories stay


def test_feeds_page_records_a_failed_fetch(ready: Cli, server: FeedServer) -> None:
    with web_app(ready, feed_allow_private="true") as web:
        c = web.client
        token = csrf(c, "/feeds")
        added = c.post("/feeds", data={"csrf": token, "url": server.url("status/500")})
        again = c.post("/feeds/1/fetch", data={"csrf": token})
        page = c.get("/feeds").text
    assert added.status_code == 200 and "failed" in added.text
    assert again.status_code == 502 and "failed" in again.text
    assert "500" in page.split("Last error")[1]


def test_feeds_page_refuses_private_hosts_and_files(
    ready: Cli, server: FeedServer, tmp_path: Path
) -> None:
    local = tmp_path / "feed.xml"
    local.write_text("<rss/>")
    with web_app(ready, feed_allow_private="true") as web:
        c = web.client
        token = csrf(c, "/feeds")
        as_file = c.post("/feeds", data={"csrf": token, "url": local.as_uri()})
        not_feed = c.post("/feeds", data={"csrf": token, "url": "gopher://x/"})
        bad_backfill = c.post(
            "/feeds", data={"csrf": token, "url": server.url("rss2.xml"), "backfill": "x"}
        )
        stored = counts(web)
    with web_app(ready) as web:  # the default: no private addresses
        token = csrf(web.client, "/feeds")
        private = web.client.post("/feeds", data={"csrf": token, "url": server.url("rss2.xml")})
        stored_private = counts(web)
    assert as_file.status_code == 400 and "file://" in as_file.text
    assert not_feed.status_code == 400 and "must start with http://" in not_feed.text
    assert bad_backfill.status_code == 400 and "whole number" in bad_backfill.text
    assert private.status_code == 400 and "loopback" in private.text
    assert stored == (0, 0) and stored_private == (0, 0)
    assert server.requests == []  # nothing was fetched


def test_feeds_page_unknown_feed_is_a_404(ready: Cli) -> None:
    with web_app(ready) as web:
        token = csrf(web.client, "/feeds")
        fetch = web.client.post("/feeds/7/fetch", data={"csrf": token})
        remove = web.client.post("/feeds/7/remove", data={"csrf": token})
    assert fetch.status_code == 404 and "no feed &#x27;7&#x27;" in fetch.text
    assert remove.status_code == 404

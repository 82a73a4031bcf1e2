"""The operator's stories page: waiting, held and used stories; add one as Markdown (the
import path of a .md file); edit, hold back and release one no started edition holds."""

from __future__ import annotations

from conftest import Cli
from sqlalchemy import func, select
from subscriber_web import web_app
from web_operator import csrf

from digest.core.db import transaction
from digest.core.models import Story
from digest.core.status import EditionStatus
from digest.editions import assemble

STORY_MD = """---
title: Night trains return
summary: Sleeper services run again from May.
tags: [Travel, rail]
url: https://example.org/trains
---
The **first** train leaves at nine.
"""


def stories(web: object) -> list[Story]:
    with web.factory() as s:  # type: ignore[attr-defined]
        return list(s.scalars(select(Story).order_by(Story.id)))


def add(web: object, text: str) -> object:
    c = web.client  # type: ignore[attr-defined]
    return c.post("/stories", data={"csrf": csrf(c, "/stories"), "markdown": text})


def test_stories_page_empty_state(ready: Cli) -> None:
    with web_app(ready) as web:
        page = web.client.get("/stories")
    assert page.status_code == 200
    assert "No stories waiting" in page.text and "No edition has taken a story yet" in page.text


def test_stories_page_add_markdown_as_the_import_does(ready: Cli, tmp_path: object) -> None:
    with web_app(ready) as web:
        added = add(web, STORY_MD)
        again = add(web, STORY_MD)
        [story] = stories(web)
    assert added.status_code == 200 and "Story 1 added" in added.text
    assert "Night trains return" in added.text.split("Waiting for the next edition")[1]
    assert "Already there" in again.text
    assert story.tags == ["travel", "rail"] and story.url == "https://example.org/trains"
    assert story.body == "<p>The <strong>first</strong> train leaves at nine.</p>"
    assert story.source == "web-form.md"


def test_stories_page_bad_markdown_is_a_400_and_stores_nothing(ready: Cli) -> None:
    with web_app(ready) as web:
        no_fence = add(web, "title: x\n")
        no_summary = add(web, "---\ntitle: Only a title\n---\n")
        script = add(web, STORY_MD.replace("nine.", "nine. <script>alert(1)</script>"))
        rows = stories(web)
    assert no_fence.status_code == 400 and "front matter missing" in no_fence.text
    assert no_summary.status_code == 400 and "front matter needs" in no_summary.text
    assert "Only a title" in no_summary.text  # the text stays in the form
    assert script.status_code == 200 and "<script>alert" not in script.text
    assert [s.body for s in rows if "<script" in (s.body or "")] == []
    assert len(rows) == 1


def test_stories_page_edit_a_waiting_story(ready: Cli) -> None:
    with web_app(ready) as web:
        add(web, STORY_MD)
        c = web.client
        token = csrf(c, "/stories/1")
        form = {
            "csrf": token,
            "headline": "Night trains are back",
            "summary": "From May.",
            "bullets": "Berlin to Paris\n\nVienna to Rome",
            "url": "",
            "tags": "rail",
            "priority": "5",
        }
        saved = c.post("/stories/1", data=form, follow_redirects=True)
        bad_url = c.post("/stories/1", data={**form, "url": "javascript:alert(1)"})
        bad_priority = c.post("/stories/1", data={**form, "priority": "high"})
        empty = c.post("/stories/1", data={**form, "headline": " "})
        [story] = stories(web)
    assert saved.status_code == 200 and "Story saved." in saved.text
    assert (story.headline, story.summary, story.bullets) == (
        "Night trains are back",
        "From May.",
        ["Berlin to Paris", "Vienna to Rome"],
    )
    assert (story.url, story.tags, story.priority) == (None, ["rail"], 5)
    assert story.body is not None and "first" in story.body  # the body stays
    assert bad_url.status_code == 400 and "absolute http(s) URL" in bad_url.text
    assert bad_priority.status_code == 400 and "whole number" in bad_priority.text
    assert empty.status_code == 400


def test_stories_page_hold_back_and_release(ready: Cli) -> None:
    with web_app(ready) as web:
        add(web, STORY_MD)
        ferries = STORY_MD.replace("Night trains return", "Ferries too").replace("trains", "boats")
        add(web, ferries.replace("nine", "ten"))
        c = web.client
        token = csrf(c, "/stories")
        held = c.post("/stories/1/hold", data={"csrf": token}, follow_redirects=True)
        with web.factory() as s:
            waiting = [st.id for st in assemble.new_stories(s)]
        with transaction(web.factory) as s:
            edition = assemble.build(s)
            assert edition is not None
            taken = [st.id for st in edition.stories]
        in_edition = c.post("/stories/2/hold", data={"csrf": token})
        released = c.post("/stories/1/release", data={"csrf": token}, follow_redirects=True)
        with web.factory() as s:
            after = [st.id for st in assemble.new_stories(s)]
        missing = c.post("/stories/99/hold", data={"csrf": token})
    assert "Held back: no new edition takes it" in held.text
    assert "Held back (1)" in held.text
    assert waiting == [2] and taken == [2]
    assert in_edition.status_code == 409 and "already in edition 1" in in_edition.text
    assert "Released" in released.text and after == [1]
    assert missing.status_code == 404 and "no story with id 99" in missing.text
    assert "Used in editions" in released.text and "/editions/1" in released.text


def test_stories_page_no_edit_once_its_edition_started(ready: Cli) -> None:
    ready("subscribers", "add", "a@example.com")
    with web_app(ready) as web:
        add(web, STORY_MD)
        with transaction(web.factory) as s:
            edition = assemble.build(s)
            assert edition is not None
            edition.status = EditionStatus.RUNNING
        c = web.client
        page = c.get("/stories/1").text
        token = csrf(c, "/stories")
        tried = c.post("/stories/1", data={"csrf": token, "headline": "Changed", "summary": "S"})
        with web.factory() as s:
            headline = s.scalar(select(Story.headline))
            total = s.scalar(select(func.count()).select_from(Story))
    assert "can no longer change" in page and 'name="headline"' not in page
    assert tried.status_code == 409 and "started sending" in tried.text
    assert headline == "Night trains return" and total == 1

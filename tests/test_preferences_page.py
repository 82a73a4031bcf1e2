"""The preferences page: a box per recent story tag, a cadence radio; saving sets both."""

from __future__ import annotations

import html
import re
from datetime import timedelta

from conftest import Cli
from sqlalchemy import update
from subscriber_web import Web, web_app

from digest.core.db import utcnow
from digest.core.models import Story

STORIES = [
    {"headline": "Rain", "summary": "Wet.", "tags": ["Climate", "science"]},
    {"headline": "Moon", "summary": "Far.", "tags": ["space"]},
    {"headline": "Old news", "summary": "Stale.", "tags": ["history", "science"]},
]


def setup(web: Web) -> str:
    """Three stories (the last ingested 91 days ago) and a subscriber; their page's path."""
    for story in STORIES:
        assert web.client.post("/api/stories", json=story).status_code == 201
    with web.factory.begin() as s:
        s.execute(
            update(Story)
            .where(Story.headline == "Old news")
            .values(ingested_at=utcnow() - timedelta(days=91))
        )
    assert web.client.post("/api/subscribers", json={"email": "ada@example.com"}).is_success
    return f"/preferences/{web.token('preferences', web.subscriber('ada@example.com').id)}"


def boxes(page: str) -> dict[str, bool]:
    """Each topic checkbox on the page: ticked or not."""
    found = re.findall(r'<input type="checkbox" name="topic" value="([^"]*)"( checked)?>', page)
    return {value: bool(checked) for value, checked in found}


def cadence_ticked(page: str) -> list[str]:
    return re.findall(r'<input type="radio" name="cadence" value="(\w+)" checked>', page)


def test_preferences_page_offers_recent_tags_and_saves_topics_and_cadence(ready: Cli) -> None:
    with web_app(ready, weekly_day="friday") as web:
        path = setup(web)
        page = web.client.get(path)
        assert page.status_code == 200
        assert boxes(page.text) == {"climate": False, "science": False, "space": False}
        assert cadence_ticked(page.text) == ["daily"] and "Weekly (on Fridays)" in page.text

        form = {"action": "save", "topics_shown": "1", "cadence": "weekly"}
        saved = web.client.post(path, data={**form, "topic": ["space", "Climate"]})
        assert saved.status_code == 200 and "Saved." in saved.text
        sub = web.subscriber("ada@example.com")
        assert (sub.topics, sub.cadence) == (["climate", "space"], "weekly")
        assert boxes(saved.text) == {"climate": True, "science": False, "space": True}
        assert cadence_ticked(saved.text) == ["weekly"]

        # A topic no recent story carries stays on the page while the subscriber has it.
        web.client.patch("/api/subscribers/1", json={"topics": ["history", "space"]})
        assert boxes(web.client.get(path).text) == {
            "climate": False,
            "history": True,
            "science": False,
            "space": True,
        }
        # No box ticked: every topic.
        everything = web.client.post(path, data=form)
        assert everything.status_code == 200 and web.subscriber("ada@example.com").topics == []


def test_preferences_page_bad_topic_or_cadence_is_400_and_changes_nothing(ready: Cli) -> None:
    with web_app(ready) as web:
        path = setup(web)
        form = {"action": "save", "topics_shown": "1", "name": "Ada", "topic": "space"}
        web.client.post(path, data=form)
        cases = {
            "cadence": ({**form, "name": "New", "cadence": "hourly"}, "unknown cadence 'hourly'"),
            "topic": ({**form, "topic": "a|b"}, "topic 'a|b' contains"),
            "empty": ({**form, "topic": ""}, "empty topic"),
        }
        for why, (data, message) in cases.items():
            refused = web.client.post(path, data=data)
            assert refused.status_code == 400, why
            assert message in html.unescape(refused.text), why
        sub = web.subscriber("ada@example.com")
        assert (sub.name, sub.topics, sub.cadence) == ("Ada", ["space"], "daily")


def test_preferences_page_save_without_topic_boxes_keeps_topics(ready: Cli) -> None:
    with web_app(ready) as web:
        path = setup(web)
        web.client.patch("/api/subscribers/1", json={"topics": ["space"], "cadence": "weekly"})
        # A form from before the topic boxes (or a name-only JSON save) leaves them alone.
        assert web.client.post(path, data={"action": "save", "name": "Ada"}).status_code == 200
        assert web.client.post(path, json={"name": "Ada L"}).status_code == 200
        sub = web.subscriber("ada@example.com")
        assert (sub.name, sub.topics, sub.cadence) == ("Ada L", ["space"], "weekly")
        as_json = web.client.post(path, json={"topics": "science, Climate", "cadence": "daily"})
        assert as_json.status_code == 200
        sub = web.subscriber("ada@example.com")
        assert (sub.topics, sub.cadence) == (["climate", "science"], "daily")


def test_preferences_page_keeps_its_token_rules(ready: Cli) -> None:
    with web_app(ready) as web:
        path = setup(web)
        sid = web.subscriber("ada@example.com").id
        form = {"action": "save", "topics_shown": "1", "topic": "space", "cadence": "weekly"}
        forged = path[:-3] + ("aaa" if not path.endswith("aaa") else "bbb")
        assert web.client.post(forged, data=form).status_code == 400
        other = f"/preferences/{web.token('unsubscribe', sid)}"
        assert web.client.post(other, data=form).status_code == 400
        # A GET never changes anything, whatever its query says.
        assert web.client.get(path, params=form).status_code == 200
        ready("subscribers", "revoke-links", "ada@example.com")
        assert web.client.post(path, data=form).status_code == 410
        sub = web.subscriber("ada@example.com")
        assert (sub.topics, sub.cadence) == ([], "daily")


def test_subscribe_form_gives_new_subscribers_the_default_cadence(ready: Cli) -> None:
    with web_app(ready, default_cadence="weekly") as web:
        assert web.client.post("/subscribe", data={"email": "ada@example.com"}).is_success
        sub = web.subscriber("ada@example.com")
        assert (sub.status, sub.topics, sub.cadence) == ("pending", [], "weekly")

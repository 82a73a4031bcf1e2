"""The API's lists a page at a time, one subscriber by id, and the API reference page."""

from __future__ import annotations

from conftest import Cli
from subscriber_web import web_app

from digest.core.db import transaction
from digest.core.models import Story
from subscribers.models import Subscriber

BEARER = {"Authorization": "Bearer s3cret"}


def add_people(web: object, n: int) -> None:
    with transaction(web.factory) as s:  # type: ignore[attr-defined]
        for i in range(n):
            s.add(Subscriber(email=f"p{i:03}@example.com", email_key=f"p{i:03}@example.com"))


def next_url(response: object) -> str:
    """The URL of the next page, from the answer's Link header."""
    return str(response.headers["link"]).split(">")[0].lstrip("<")  # type: ignore[attr-defined]


def test_api_subscribers_paginated_with_a_next_cursor(ready: Cli) -> None:
    with web_app(ready) as web:
        add_people(web, 7)
        c = web.client
        first = c.get("/api/subscribers?limit=3")
        second = c.get(next_url(first))
        third = c.get(f"/api/subscribers?limit=3&cursor={second.headers['x-next-cursor']}")
        default = c.get("/api/subscribers")
    assert [s["email"] for s in first.json()] == [f"p{i:03}@example.com" for i in range(3)]
    assert first.headers["x-next-cursor"] == str(first.json()[-1]["id"])
    assert first.headers["link"].endswith('; rel="next"')
    assert [s["email"] for s in second.json()] == [f"p{i:03}@example.com" for i in range(3, 6)]
    assert [s["email"] for s in third.json()] == ["p006@example.com"]
    assert "link" not in third.headers and "x-next-cursor" not in third.headers
    assert len(default.json()) == 7 and "link" not in default.headers


def test_api_subscribers_default_page_is_100_and_filters_keep_across_pages(ready: Cli) -> None:
    with web_app(ready) as web:
        add_people(web, 130)
        c = web.client
        first = c.get("/api/subscribers")
        rest = c.get(next_url(first))
        search = c.get("/api/subscribers?search=p12&limit=5")
        more = c.get(next_url(search))
    assert len(first.json()) == 100 and len(rest.json()) == 30
    assert "search=p12" in search.headers["link"]
    assert [s["email"] for s in search.json() + more.json()] == [
        f"p{i}@example.com" for i in range(120, 130)
    ]


def test_api_pagination_bad_values_are_400_one_line(ready: Cli) -> None:
    with web_app(ready) as web:
        c = web.client
        answers = {
            q: c.get(f"/api/subscribers?{q}")
            for q in ("limit=0", "limit=501", "limit=x", "cursor=-1", "cursor=abc")
        }
        stories = c.get("/api/stories?limit=1000")
    for query, answer in {**answers, "stories": stories}.items():
        assert answer.status_code == 400, query
        error = answer.json()["error"]
        assert "\n" not in error and ("limit" in error or "cursor" in error), query
    assert "500" in answers["limit=501"].json()["error"]


def test_api_stories_paginated(ready: Cli) -> None:
    with web_app(ready) as web:
        with transaction(web.factory) as s:
            for i in range(5):
                s.add(Story(headline=f"H{i}", summary="S", source="t", content_hash=f"h{i}"))
        c = web.client
        first = c.get("/api/stories?limit=2")
        second = c.get(next_url(first))
        new = c.get("/api/stories?new=true&limit=4")
    assert [s["headline"] for s in first.json()] == ["H0", "H1"]
    assert [s["headline"] for s in second.json()] == ["H2", "H3"]
    assert "new=true" in new.headers["link"] and len(new.json()) == 4


def test_api_one_subscriber_by_id(ready: Cli) -> None:
    ready("subscribers", "add", "ada@example.com", "--name", "Ada")
    with web_app(ready) as web:
        c = web.client
        ada = c.get("/api/subscribers/1")
        missing = c.get("/api/subscribers/42")
        bad = c.get("/api/subscribers/abc")
        c.delete("/api/subscribers/1")
        erased = c.get("/api/subscribers/1")
    assert ada.status_code == 200
    assert (ada.json()["email"], ada.json()["name"]) == ("ada@example.com", "Ada")
    assert missing.status_code == 404 and missing.json() == {"error": "no subscriber with id 42"}
    assert bad.status_code == 400
    assert erased.status_code == 404


def test_api_docs_is_a_self_contained_reference(ready: Cli) -> None:
    with web_app(ready) as web:
        docs = web.client.get("/api/docs")
        doc = web.client.get("/api/openapi.json").json()
    html = docs.text
    assert docs.status_code == 200 and docs.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in docs.headers["content-security-policy"]
    assert "<script" not in html and "style=" not in html
    assert "http://" not in html.replace("http://127.0.0.1", "") and "https://" not in html
    for path in doc["paths"]:
        assert f"{path}</code>" in html, path
    assert "<code>GET /api/subscribers/{subscriber_id}</code>" in html
    assert "<code>cursor</code>" in html and "<code>StoryIn</code>" in html


def test_api_docs_and_openapi_need_operator_access(ready: Cli) -> None:
    with web_app(ready, admin_token="s3cret") as web:
        c = web.client
        closed = [c.get(u).status_code for u in ("/api/docs", "/api/openapi.json")]
        opened = [c.get(u, headers=BEARER).status_code for u in ("/api/docs", "/api/openapi.json")]
    assert closed == [401, 401] and opened == [200, 200]

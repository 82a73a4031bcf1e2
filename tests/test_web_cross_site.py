"""Cross-site writes and unknown Host names are refused before any route runs, open mode too."""

from __future__ import annotations

import re
from typing import Any

import pytest
from conftest import SEEDS, Captured, Cli
from fastapi.routing import iter_route_contexts
from sqlalchemy import select
from subscriber_web import ONE_CLICK, Web, web_app
from web_operator import csrf, with_stories

from digest.core.db import Base
from digest.core.errors import ConfigError
from digest.core.settings import load_settings

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
ATTACKER = "https://attacker.example"
CROSS_SITE: dict[str, dict[str, str]] = {
    "foreign Origin": {"Origin": ATTACKER},
    "Origin null": {"Origin": "null"},
    "Sec-Fetch-Site cross-site": {"Sec-Fetch-Site": "cross-site"},
    "Sec-Fetch-Site same-site": {"Sec-Fetch-Site": "same-site"},
    "own Origin but cross-site fetch": {
        "Origin": "http://127.0.0.1",
        "Sec-Fetch-Site": "cross-site",
    },
}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
BEARER = {"Authorization": "Bearer s3cret"}
# Posted to from other sites on purpose: the public subscribe form.
PUBLIC_POSTS = {("POST", "/subscribe")}


def unsafe_routes(web: Web) -> list[tuple[str, str]]:
    """(method, path) of every unsafe route of the app, its parameters filled in."""
    routes = []
    # Included routers are flattened: every route of every router, with its full path.
    for route in iter_route_contexts(web.client.app.routes):  # type: ignore[attr-defined]
        for method in sorted(set(getattr(route, "methods", None) or ()) & UNSAFE):
            assert route.path, route
            routes.append((method, fill(web, route.path)))
    return routes


def fill(web: Web, path: str) -> str:
    """``path`` with real values: edition 1, subscriber 1, and a valid token for the page."""
    purpose = path.strip("/").split("/")[0]
    values = {
        "edition_id": "1",
        "subscriber_id": "1",
        "story_id": "1",
        "feed_id": "1",
        "action": "pause",
    }
    if "{token}" in path:
        values["token"] = web.token(purpose, 1)
    return re.sub(r"\{(\w+)(:\w+)?\}", lambda m: values[m.group(1)], path)


def snapshot(web: Web) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table."""
    with web.factory() as s:
        return {
            table.name: sorted((tuple(map(str, row)) for row in s.execute(select(table))), key=str)
            for table in Base.metadata.sorted_tables
        }


@pytest.fixture
def site(ready: Cli) -> Cli:
    """Subscriber 1 active, a draft edition 1 and a new story an edition could be built from."""
    with_stories(ready, "one@example.com")
    ready("edition", "build")
    ready("stories", "import", str(SEEDS / "stories" / "001_4f8a2c1e9b7d3a60.txt"))
    return ready


@pytest.mark.parametrize("mode", ["open", "token"])
def test_cross_site_post_with_an_empty_body_to_every_unsafe_route_is_403_and_changes_nothing(
    site: Cli, captured: Captured, mode: str
) -> None:
    extra = {"admin_token": "s3cret"} if mode == "token" else {}
    with web_app(site, **extra) as web:
        c = web.client
        if mode == "token":  # a logged-in operator's browser, cookies and all
            c.post("/login", data={"csrf": csrf(c), "token": "s3cret"})
            assert c.get("/editions").status_code == 200
        routes = unsafe_routes(web)
        # The app's write routes, pages and API: none may escape this test.
        assert {path for _, path in routes} >= {"/api/editions", "/editions/1/send", "/logout"}
        assert len(routes) >= 17, routes
        before = snapshot(web)
        for why, headers in CROSS_SITE.items():
            for method, path in routes:
                answer = c.request(method, path, content=b"", headers={**FORM, **headers})
                if (method, path) in PUBLIC_POSTS:
                    assert answer.status_code == 400, (why, path)  # no address: nothing to do
                    continue
                assert answer.status_code == 403, (why, method, path, answer.text)
                assert "cross-site request refused" in answer.text, (why, path)
        assert snapshot(web) == before
        assert c.get("/editions").status_code == 200  # still logged in
        # The same empty-bodied request from this site does change things.
        assert c.post("/api/editions", headers={"Origin": "http://127.0.0.1"}).status_code == 201
    assert captured.envelopes == []


def test_cross_site_one_click_unsubscribe_still_works_without_cookies(site: Cli) -> None:
    with web_app(site) as web:
        path = f"/unsubscribe/{web.token('unsubscribe', 1)}"
        answer = web.client.post(
            path,
            content=b"List-Unsubscribe=One-Click",
            headers={**ONE_CLICK, "Origin": ATTACKER, "Sec-Fetch-Site": "cross-site"},
            follow_redirects=False,
        )
        assert answer.status_code == 200 and "You are unsubscribed" in answer.text
        assert web.subscriber("one@example.com").status == "unsubscribed"


def test_cross_site_one_click_with_a_multipart_body_works(site: Cli) -> None:
    with web_app(site) as web:
        path = f"/unsubscribe/{web.token('unsubscribe', 1)}"
        answer = web.client.post(
            path,
            files={"List-Unsubscribe": (None, "One-Click")},
            headers={"Origin": ATTACKER},
            follow_redirects=False,
        )
        assert answer.status_code == 200
        assert web.subscriber("one@example.com").status == "unsubscribed"


def test_cross_site_subscribe_form_still_works(site: Cli, captured: Captured) -> None:
    with web_app(site) as web:
        answer = web.client.post(
            "/subscribe",
            data={"email": "fan@example.org"},
            headers={"Origin": ATTACKER, "Sec-Fetch-Site": "cross-site"},
        )
        assert answer.status_code == 200 and "Check your inbox" in answer.text
        assert web.subscriber("fan@example.org").status == "pending"
    assert [rcpt for _, [rcpt], _ in captured.envelopes] == ["fan@example.org"]


def test_cross_site_guard_lets_clients_without_origin_through(site: Cli) -> None:
    with web_app(site, admin_token="s3cret") as web:
        assert web.client.post("/api/editions").status_code == 401
        built = web.client.post("/api/editions", headers=BEARER)
        assert built.status_code == 201 and built.json()["id"] == 2
        sent = web.client.post("/api/editions/1/send", json={}, headers=BEARER)
        assert sent.status_code == 202
    with web_app(site) as web:  # open mode, from loopback, no Origin: a script on the box
        assert web.client.post("/api/editions/2/cancel").status_code == 200


def test_cross_site_guard_accepts_the_app_s_own_origins(site: Cli) -> None:
    with web_app(site, base_url="https://news.example", allowed_hosts="news.example") as web:
        c = web.client
        own = {"Host": "news.example", "Sec-Fetch-Site": "same-origin"}
        # BASE_URL's origin (TLS ends at a proxy), or this request's own scheme and Host.
        for origin in ("https://news.example", "https://NEWS.example:443", "http://news.example"):
            answer = c.post("/api/editions/1/pause", headers={**own, "Origin": origin})
            assert answer.status_code == 409, origin  # past the guard: a draft is not running
        # A browser posting this site's own form under a no-referrer policy says "null".
        answer = c.post("/api/editions/1/pause", headers={**own, "Origin": "null"})
        assert answer.status_code == 409
        for origin in ("https://news.example:8443", "https://evil.news.example"):
            answer = c.post("/api/editions/1/pause", headers={**own, "Origin": origin})
            assert answer.status_code == 403, origin


def test_host_unknown_is_400_with_one_line_and_changes_nothing(site: Cli) -> None:
    with web_app(site) as web:
        c = web.client
        before = snapshot(web)
        bad = {"Host": "attacker.example"}
        for method, path in (("GET", "/editions"), ("GET", "/archive"), ("POST", "/api/editions")):
            answer = c.request(method, path, headers=bad)
            assert answer.status_code == 400, path
            assert answer.text.strip() == (
                "unknown host 'attacker.example': not in DIGEST_ALLOWED_HOSTS"
            )
            assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert c.get("/editions", headers={"Host": "attacker.example:8000"}).status_code == 400
        assert c.get("/editions", headers={"Host": "127.0.0.1.attacker.example"}).status_code == 400
        assert snapshot(web) == before
        # Platform health checks call it by whatever name they have.
        assert c.get("/healthz", headers=bad).text == "ok"


def test_host_loopback_base_url_and_allowed_hosts_are_served(site: Cli) -> None:
    extra = {"base_url": "https://news.example", "allowed_hosts": "Alt.Example, [2001:db8::1]"}
    with web_app(site, **extra) as web:
        for host in (
            "127.0.0.1:8000",
            "localhost",
            "[::1]:8080",
            "news.example",
            "alt.example:8443",
            "[2001:db8::1]",
        ):
            assert web.client.get("/archive", headers={"Host": host}).status_code == 200, host
        assert web.client.get("/archive", headers={"Host": "other.example"}).status_code == 400


@pytest.mark.parametrize("value", ["https://news.example", "news.example:443", "a/b", "[::1"])
def test_host_allowed_hosts_setting_refuses_urls_and_ports(value: str) -> None:
    with pytest.raises(ConfigError, match="DIGEST_ALLOWED_HOSTS"):
        load_settings(allowed_hosts=value)


def test_host_allowed_hosts_setting_takes_a_string_or_a_list() -> None:
    names = {"news.example", "2001:db8::1"}
    assert load_settings(allowed_hosts=" News.example ,[2001:db8::1],").allowed_host_names == names
    assert (
        load_settings(allowed_hosts=["news.example", "[2001:db8::1]"]).allowed_host_names == names
    )

"""Abuse limits: /subscribe per client and overall, its honeypot, login throttling, logout."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from conftest import Captured, Cli
from fastapi.testclient import TestClient
from subscriber_web import LOOPBACK, Web, web_app
from web_operator import csrf

from digest.core.db import make_engine, session_factory, transaction
from digest.web.app import create_app
from digest.web.limits import WindowLimit
from subscribers.lifecycle import transition
from subscribers.service import find
from subscribers.status import SubscriberStatus

BEARER = {"Authorization": "Bearer s3cret"}


@contextmanager
def client_at(web: Web, address: str) -> Iterator[TestClient]:
    """Another browser, from ``address``, on the same app."""
    with TestClient(web.client.app, LOOPBACK, client=(address, 40000)) as client:
        yield client


def test_subscribe_is_limited_per_client_address(ready: Cli, captured: Captured) -> None:
    with web_app(ready, subscribe_limit_per_client=3) as web:
        for i in range(3):
            assert web.client.post("/subscribe", data={"email": f"a{i}@example.com"}).is_success
        page = web.client.post("/subscribe", data={"email": "a3@example.com"})
        as_json = web.client.post("/subscribe", json={"email": "a4@example.com"})
        with client_at(web, "203.0.113.7") as other:
            elsewhere = other.post("/subscribe", data={"email": "b@example.com"})
    assert page.status_code == 429 and int(page.headers["Retry-After"]) > 0
    assert "too many subscription requests" in page.text
    assert as_json.status_code == 429 and "too many" in as_json.json()["error"]
    assert elsewhere.status_code == 200
    mailed = sorted(rcpt for _, [rcpt], _ in captured.envelopes)
    assert mailed == ["a0@example.com", "a1@example.com", "a2@example.com", "b@example.com"]
    assert "a3@example.com" not in ready("subscribers", "list").output


def test_subscribe_is_limited_overall_across_client_addresses(
    ready: Cli, captured: Captured
) -> None:
    with web_app(ready, subscribe_limit=2) as web:
        answers = []
        for i in range(3):
            with client_at(web, f"198.51.100.{i}") as bot:
                answers.append(bot.post("/subscribe", data={"email": f"victim{i}@example.com"}))
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[2].headers["Retry-After"].isdigit()
    assert len(captured.envelopes) == 2


def test_subscribe_honeypot_looks_accepted_and_stores_and_mails_nothing(
    ready: Cli, captured: Captured
) -> None:
    with web_app(ready) as web:
        form = web.client.get("/subscribe").text
        real = web.client.post("/subscribe", data={"email": "person@example.com"})
        bot = web.client.post(
            "/subscribe", data={"email": "bot@example.com", "website": "http://spam.example"}
        )
        bot_json = web.client.post("/subscribe", json={"email": "bot2@example.com", "website": "x"})
    assert 'name="website"' in form and 'class="hp"' in form
    assert (bot.status_code, bot.text) == (real.status_code, real.text)
    assert bot_json.status_code == 202 and bot_json.json()["status"] == "ok"
    assert [rcpt for _, [rcpt], _ in captured.envelopes] == ["person@example.com"]
    listed = ready("subscribers", "list").output
    assert "person@example.com" in listed and "bot" not in listed


def test_subscribe_answer_is_the_same_for_new_pending_active_paused_and_unsubscribed(
    ready: Cli,
) -> None:
    ready("subscribers", "add", "active@example.com")
    ready("subscribers", "add", "paused@example.com")
    ready("subscribers", "add", "gone@example.com")
    ready("subscribers", "unsubscribe", "gone@example.com")
    with web_app(ready, subscribe_limit_per_client=0) as web:  # 0: no limit
        web.client.post("/subscribe", data={"email": "pending@example.com"})
        with transaction(web.factory) as s:
            paused = find(s, "paused@example.com")
            assert paused is not None
            transition(paused, SubscriberStatus.PAUSED)
        addresses = ("new@example.com", "pending@example.com", "active@example.com")
        addresses += ("paused@example.com", "gone@example.com")
        pages = [web.client.post("/subscribe", data={"email": a}) for a in addresses]
        as_json = [web.client.post("/subscribe", json={"email": a}) for a in addresses]
        assert web.subscriber("pending@example.com").status == "pending"
    assert len({(p.status_code, p.text) for p in pages}) == 1
    assert len({(j.status_code, j.text) for j in as_json}) == 1
    assert pages[0].status_code == 200 and as_json[0].status_code == 202


def test_login_is_throttled_per_client_after_five_wrong_tokens(ready: Cli) -> None:
    with web_app(ready, admin_token="s3cret") as web:
        c = web.client
        token = csrf(c)
        wrong = [c.post("/login", data={"csrf": token, "token": f"guess{i}"}) for i in range(5)]
        locked = c.post("/login", data={"csrf": token, "token": "guess5"})
        right_but_locked = c.post("/login", data={"csrf": token, "token": "s3cret"})
        bearer_locked = c.get("/api/editions", headers=BEARER)
        with client_at(web, "192.0.2.44") as other:
            other_login = other.post(
                "/login", data={"csrf": csrf(other), "token": "s3cret"}, follow_redirects=False
            )
    assert [w.status_code for w in wrong] == [401] * 5
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0
    assert "too many wrong admin tokens" in locked.text
    assert right_but_locked.status_code == 429 and "digest_operator" not in c.cookies
    assert bearer_locked.status_code == 429 and bearer_locked.headers["Retry-After"]
    assert other_login.status_code == 303  # another address is not locked out


def test_login_throttle_counts_wrong_bearer_tokens_too(ready: Cli) -> None:
    with web_app(ready, admin_token="s3cret", login_max_failures=2) as web:
        c = web.client
        answers = [
            c.get("/api/editions", headers={"Authorization": f"Bearer x{i}"}) for i in range(3)
        ]
        login = c.post("/login", data={"csrf": csrf(c), "token": "s3cret"})
    assert [a.status_code for a in answers] == [401, 401, 429]
    assert login.status_code == 429


def test_login_success_forgets_earlier_failures(ready: Cli) -> None:
    with web_app(ready, admin_token="s3cret", login_max_failures=2) as web:
        c = web.client
        assert c.get("/api/editions", headers={"Authorization": "Bearer x"}).status_code == 401
        assert c.get("/api/editions", headers=BEARER).status_code == 200
        assert c.get("/api/editions", headers={"Authorization": "Bearer y"}).status_code == 401
        assert c.get("/api/editions", headers=BEARER).status_code == 200


def test_logout_revokes_the_session_in_every_web_process(ready: Cli) -> None:
    with web_app(ready, admin_token="s3cret") as web:
        c = web.client
        c.post("/login", data={"csrf": csrf(c), "token": "s3cret"})
        copied = c.cookies["digest_operator"]
        # A second web process on the same database.
        engine = make_engine(web.settings.effective_database_url)
        try:
            app = create_app(web.settings, session_factory(engine))
            with TestClient(app, LOOPBACK, cookies={"digest_operator": copied}) as elsewhere:
                assert elsewhere.get("/editions").status_code == 200
                c.post("/logout", data={"csrf": csrf(c)})
                assert elsewhere.get("/editions").status_code == 401
                assert elsewhere.get("/api/editions").status_code == 401
        finally:
            engine.dispose()
        with TestClient(web.client.app, LOOPBACK, cookies={"digest_operator": copied}) as again:
            assert again.get("/editions").status_code == 401


def test_session_cookie_stops_working_when_the_admin_token_changes(ready: Cli) -> None:
    with web_app(ready, admin_token="s3cret") as web:
        web.client.post("/login", data={"csrf": csrf(web.client), "token": "s3cret"})
        copied = web.client.cookies["digest_operator"]
        assert web.client.get("/editions").status_code == 200
    with web_app(ready, admin_token="n3w") as web:
        web.client.cookies.set("digest_operator", copied)
        assert web.client.get("/editions").status_code == 401


def test_limits_window_forgets_events_older_than_the_window() -> None:
    now = [1000.0]
    limit = WindowLimit(2, 60, clock=lambda: now[0])
    limit.hit("a")
    now[0] += 30
    limit.hit("a")
    assert limit.retry_after("a") == 30 and limit.retry_after("b") is None
    now[0] += 30
    assert limit.retry_after("a") is None  # the first event has left the window
    assert WindowLimit(0, 60).retry_after("a") is None  # 0: no limit

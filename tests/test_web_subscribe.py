"""Double opt-in through the real web app: POST /subscribe, the mail, GET/POST /confirm."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from conftest import Captured, Cli
from subscriber_web import Web, confirmation_links, web_app

from subscribers.lifecycle import SUPPRESSED


def subscribe(web: Web, email: str, **extra: str):  # type: ignore[no-untyped-def]
    return web.client.post("/subscribe", data={"email": email, **extra})


def test_subscribe_form_then_confirm_makes_an_active_subscriber(
    ready: Cli, captured: Captured
) -> None:
    with web_app(ready) as web:
        page = subscribe(web, "ada@Example.COM", name="Ada Lovelace", timezone="Europe/London")
        assert page.status_code == 200 and "Check your inbox" in page.text
        sub = web.subscriber("ada@example.com")
        assert (sub.email, sub.status, sub.source) == ("ada@Example.COM", "pending", "web")
        assert (sub.name, sub.timezone, sub.confirmed_at) == ("Ada Lovelace", "Europe/London", None)

        [msg] = captured.messages()
        assert msg["To"].addresses[0].addr_spec == "ada@Example.COM"
        assert "Confirm your subscription" in msg["Subject"]
        [link] = confirmation_links(captured)
        html = msg.get_body(("html",))
        assert html is not None and link in html.get_content()
        path = urlsplit(link).path

        shown = web.client.get(path)
        assert shown.status_code == 200 and 'method="post"' in shown.text
        assert "<script" not in shown.text
        assert web.subscriber("ada@example.com").status == "pending"

        done = web.client.post(path)
        assert done.status_code == 200 and "You are subscribed" in done.text
        sub = web.subscriber("ada@example.com")
        assert sub.status == "active" and sub.confirmed_at is not None
        assert web.client.post(path).status_code == 200  # idempotent
    assert "active       ada@Example.COM" in ready("subscribers", "list").output


def test_subscribe_json_answers_202_and_records_source_api(ready: Cli, captured: Captured) -> None:
    with web_app(ready) as web:
        answer = web.client.post("/subscribe", json={"email": "grace@example.org"})
        assert answer.status_code == 202 and answer.json()["status"] == "ok"
        assert web.subscriber("grace@example.org").source == "api"
    assert len(captured.envelopes) == 1


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"email": "not-an-address"}, "invalid address"),
        ({"email": ""}, "empty address"),
        ({"email": "a@example.com", "timezone": "Mars/Olympus"}, "unknown time zone"),
    ],
)
def test_subscribe_bad_input_is_400_and_stores_nothing(
    ready: Cli, captured: Captured, body: dict[str, str], problem: str
) -> None:
    with web_app(ready) as web:
        as_json = web.client.post("/subscribe", json=body)
        assert as_json.status_code == 400 and problem in as_json.json()["error"]
        as_form = web.client.post("/subscribe", data=body)
        assert as_form.status_code == 400 and problem in as_form.text
    assert ready("subscribers", "list", "--json").output.strip() == "[]"
    assert captured.envelopes == []


def test_subscribe_answers_the_same_for_new_and_known_addresses(
    ready: Cli, captured: Captured
) -> None:
    ready("subscribers", "add", "known@example.com")
    with web_app(ready) as web:
        new = subscribe(web, "new@example.com")
        known = subscribe(web, "known@example.com")
        again = subscribe(web, "new@example.com")
        for answer in (known, again):
            assert (answer.status_code, answer.text) == (new.status_code, new.text)
        as_json = [
            web.client.post("/subscribe", json={"email": e}).json()
            for e in ("known@example.com", "other@example.com")
        ]
        assert as_json[0] == as_json[1]
        assert web.subscriber("known@example.com").status == "active"
    # Only the unknown addresses were mailed; the active one was left alone.
    assert sorted(rcpt for _, [rcpt], _ in captured.envelopes) == [
        "new@example.com",
        "other@example.com",
    ]


def test_subscribe_rate_limits_confirmation_mails_per_address(
    ready: Cli, captured: Captured
) -> None:
    with web_app(ready) as web:
        for _ in range(3):
            assert subscribe(web, "eager@example.com").status_code == 200
        assert subscribe(web, " eager@EXAMPLE.com ").status_code == 200  # same key
    assert len(captured.envelopes) == 1
    with web_app(ready, confirm_interval_minutes=0) as web:
        subscribe(web, "eager@example.com")
    assert len(captured.envelopes) == 2


def test_resubscribing_after_unsubscribing_needs_a_new_confirmation(
    ready: Cli, captured: Captured
) -> None:
    ready("subscribers", "add", "back@example.com")
    ready("subscribers", "unsubscribe", "back@example.com")
    with web_app(ready) as web:
        subscribe(web, "back@example.com")
        sub = web.subscriber("back@example.com")
        assert sub.status == "pending" and sub.unsubscribed_at is not None
        [link] = confirmation_links(captured)
        assert web.client.post(urlsplit(link).path).status_code == 200
        assert web.subscriber("back@example.com").status == "active"


def test_complained_address_is_never_mailed_a_confirmation(ready: Cli, captured: Captured) -> None:
    from digest.core.db import transaction
    from subscribers.lifecycle import transition
    from subscribers.service import find
    from subscribers.status import SubscriberStatus

    ready("subscribers", "add", "angry@example.com")
    with web_app(ready) as web:
        with transaction(web.factory) as s:
            sub = find(s, "angry@example.com")
            assert sub is not None
            transition(sub, SubscriberStatus.COMPLAINED)
        assert subscribe(web, "angry@example.com").status_code == 200
        assert web.subscriber("angry@example.com").status in SUPPRESSED
    assert captured.envelopes == []


@pytest.mark.parametrize("how", ["tampered", "other-purpose", "no-such-subscriber", "garbage"])
def test_confirm_with_a_bad_token_changes_nothing(ready: Cli, captured: Captured, how: str) -> None:
    with web_app(ready) as web:
        subscribe(web, "wait@example.com")
        sub_id = web.subscriber("wait@example.com").id
        good = web.token("confirm", sub_id)
        token = {
            "tampered": good[:-2] + ("AA" if not good.endswith("AA") else "BB"),
            "other-purpose": web.token("unsubscribe", sub_id),
            "no-such-subscriber": web.token("confirm", sub_id + 100),
            "garbage": "%C2%B2.abc",
        }[how]
        for answer in (web.client.get(f"/confirm/{token}"), web.client.post(f"/confirm/{token}")):
            assert answer.status_code == (404 if how == "no-such-subscriber" else 400)
            assert "not valid" in answer.text
        assert web.subscriber("wait@example.com").status == "pending"

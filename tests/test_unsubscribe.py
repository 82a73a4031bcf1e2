"""One-click unsubscribe (RFC 8058), the GET page that never changes state, preferences."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from conftest import REFERENCE_STORY, Captured, Cli
from subscriber_web import ONE_CLICK, Web, web_app

from subscribers.tokens import make_token


def add_reader(cli: Cli, email: str = "reader@example.com") -> None:
    cli("subscribers", "add", email, "--name", "Reader")


def one_click(web: Web, path: str):  # type: ignore[no-untyped-def]
    """The POST exactly as Gmail sends it: no cookies, form-encoded, the one-click body."""
    web.client.cookies.clear()
    return web.client.post(
        path, content=b"List-Unsubscribe=One-Click", headers=ONE_CLICK, follow_redirects=False
    )


def test_one_click_post_unsubscribes_with_200_and_no_redirect(ready: Cli) -> None:
    add_reader(ready)
    with web_app(ready) as web:
        sub = web.subscriber("reader@example.com")
        path = f"/unsubscribe/{web.token('unsubscribe', sub.id)}"
        answer = one_click(web, path)
        assert answer.status_code == 200
        assert "location" not in answer.headers and "set-cookie" not in answer.headers
        gone = web.subscriber("reader@example.com")
        assert gone.status == "unsubscribed" and gone.unsubscribed_at is not None
        again = one_click(web, path)
        assert again.status_code == 200
        assert web.subscriber("reader@example.com").unsubscribed_at == gone.unsubscribed_at


def test_one_click_works_with_a_multipart_body_too(ready: Cli) -> None:
    add_reader(ready)
    with web_app(ready) as web:
        sub = web.subscriber("reader@example.com")
        answer = web.client.post(
            f"/unsubscribe/{web.token('unsubscribe', sub.id)}",
            files={"List-Unsubscribe": (None, "One-Click")},
            follow_redirects=False,
        )
        assert answer.status_code == 200
        assert web.subscriber("reader@example.com").status == "unsubscribed"


def test_unsubscribe_get_shows_a_button_and_never_changes_state(ready: Cli) -> None:
    add_reader(ready)
    with web_app(ready) as web:
        sub = web.subscriber("reader@example.com")
        path = f"/unsubscribe/{web.token('unsubscribe', sub.id)}"
        for _ in range(3):
            page = web.client.get(path)
            assert page.status_code == 200
            assert f'<form method="post" action="{path}">' in page.text
            assert "<script" not in page.text
            assert "script-src" not in page.headers["content-security-policy"]
        assert web.subscriber("reader@example.com").status == "active"


def test_unsubscribe_link_of_a_sent_digest_works(ready: Cli, captured: Captured) -> None:
    ready("stories", "import", str(REFERENCE_STORY))
    add_reader(ready)
    ready("edition", "build")
    ready("send", "latest")
    [msg] = captured.messages()
    header = str(msg["List-Unsubscribe"])
    url = header.split("<", 1)[1].split(">", 1)[0]
    with web_app(ready) as web:
        assert one_click(web, urlsplit(url).path).status_code == 200
        assert web.subscriber("reader@example.com").status == "unsubscribed"


FORGERIES = [
    "tampered",
    "truncated",
    "other-subscriber",
    "other-purpose",
    "other-key",
    "garbage",
    "another-spelling",
]


@pytest.mark.parametrize("how", FORGERIES)
def test_unsubscribe_with_a_forged_token_changes_nothing(ready: Cli, how: str) -> None:
    add_reader(ready)
    add_reader(ready, "victim@example.com")
    with web_app(ready) as web:
        mine = web.subscriber("reader@example.com").id
        victim = web.subscriber("victim@example.com").id
        good = web.token("unsubscribe", mine)
        head, sig = good.split(".")
        token = {
            "tampered": f"{head}.{'A' if sig[0] != 'A' else 'B'}{sig[1:]}",
            "truncated": good[:-3],
            "other-subscriber": f"{victim}.{sig}",
            "other-purpose": web.token("confirm", victim),
            "other-key": make_token(b"not the key", "unsubscribe", victim),
            "garbage": "..%C3%A9",
            "another-spelling": f"0{head}.{sig}",  # the same id with a leading zero
        }[how]
        for answer in (
            one_click(web, f"/unsubscribe/{token}"),
            web.client.get(f"/unsubscribe/{token}"),
            web.client.post(f"/preferences/{token}", data={"action": "leave"}),
        ):
            assert answer.status_code in (400, 404)
        assert {web.subscriber(k).status for k in ("reader@example.com", "victim@example.com")} == {
            "active"
        }


def test_preferences_change_name_and_time_zone_then_leave(ready: Cli) -> None:
    add_reader(ready)
    with web_app(ready) as web:
        sub = web.subscriber("reader@example.com")
        path = f"/preferences/{web.token('preferences', sub.id)}"
        page = web.client.get(path)
        assert page.status_code == 200 and 'value="Reader"' in page.text

        saved = web.client.post(path, data={"name": "Ada <b>", "timezone": "Asia/Tokyo"})
        assert saved.status_code == 200 and "Ada &lt;b&gt;" in saved.text
        sub = web.subscriber("reader@example.com")
        assert (sub.name, sub.timezone, sub.status) == ("Ada <b>", "Asia/Tokyo", "active")

        bad = web.client.post(path, data={"name": "X", "timezone": "Nowhere/Land"})
        assert bad.status_code == 400 and "unknown time zone" in bad.text
        assert web.subscriber("reader@example.com").name == "Ada <b>"

        left = web.client.post(path, data={"action": "leave"})
        assert left.status_code == 200
        assert web.subscriber("reader@example.com").status == "unsubscribed"


def test_cli_unsubscribe_is_idempotent(ready: Cli) -> None:
    add_reader(ready)
    assert ready("subscribers", "unsubscribe", "reader@EXAMPLE.com").output == (
        "unsubscribed reader@EXAMPLE.com\n"
    )
    assert ready("subscribers", "unsubscribe", "reader@example.com").output == (
        "reader@example.com: no change\n"
    )
    result = ready("subscribers", "unsubscribe", "nobody@example.com", ok=False)
    assert result.output == "Error: 'nobody@example.com': no such subscriber\n"

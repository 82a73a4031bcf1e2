"""`digest subscribers revoke-links EMAIL`: that subscriber's old links stop working (410,
nothing changes), the links mailed afterwards work, everyone else's old links still work."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from conftest import REFERENCE_STORY, SEEDS, Captured, Cli
from subscriber_web import ONE_CLICK, Web, confirmation_links, web_app

SECOND_STORY = SEEDS / "stories" / "001_4f8a2c1e9b7d3a60.txt"


def links_of(captured: Captured, email: str) -> dict[str, str]:
    """The unsubscribe (List-Unsubscribe) and preferences paths of the last mail to ``email``."""
    msg = [m for m in captured.messages() if email in str(m["To"])][-1]
    unsubscribe = str(msg["List-Unsubscribe"]).split("<", 1)[1].split(">", 1)[0]
    body = msg.get_body(("plain",))
    assert body is not None
    found = re.search(r"https?://\S+/preferences/\S+", body.get_content())
    assert found, body.get_content()
    return {"unsubscribe": urlsplit(unsubscribe).path, "preferences": urlsplit(found[0]).path}


def send_edition(cli: Cli, story: str) -> None:
    cli("stories", "import", story)
    cli("edition", "build")
    cli("send", "latest")


def one_click(web: Web, path: str) -> int:
    web.client.cookies.clear()
    answer = web.client.post(path, content=b"List-Unsubscribe=One-Click", headers=ONE_CLICK)
    return answer.status_code


def test_revoke_links_refuses_old_links_accepts_new_ones_and_spares_others(
    ready: Cli, captured: Captured
) -> None:
    ready("subscribers", "add", "ada@example.com")
    ready("subscribers", "add", "bob@example.com")
    send_edition(ready, str(REFERENCE_STORY))
    ada_old, bob_old = links_of(captured, "ada@example.com"), links_of(captured, "bob@example.com")

    out = ready("subscribers", "revoke-links", "ada@example.com").output
    assert out == "revoked the links mailed to ada@example.com so far (link version 2)\n"

    with web_app(ready) as web:
        refused = web.client.get(ada_old["unsubscribe"])
        assert refused.status_code == 410 and "no longer works" in refused.text
        assert one_click(web, ada_old["unsubscribe"]) == 410
        assert web.client.get(ada_old["preferences"]).status_code == 410
        leave = web.client.post(ada_old["preferences"], data={"action": "leave"})
        assert leave.status_code == 410
        assert web.subscriber("ada@example.com").status == "active"
        assert web.subscriber("ada@example.com").unsubscribed_at is None

    send_edition(ready, str(SECOND_STORY))
    ada_new = links_of(captured, "ada@example.com")
    assert ada_new != ada_old
    with web_app(ready) as web:
        assert web.client.get(ada_new["preferences"]).status_code == 200
        assert one_click(web, ada_new["unsubscribe"]) == 200
        assert web.subscriber("ada@example.com").status == "unsubscribed"
        assert one_click(web, bob_old["unsubscribe"]) == 200  # never revoked: still works
        assert web.subscriber("bob@example.com").status == "unsubscribed"


def test_revoke_links_twice_retires_the_second_version_too(ready: Cli, captured: Captured) -> None:
    ready("subscribers", "add", "ada@example.com")
    ready("subscribers", "revoke-links", "ada@example.com")
    send_edition(ready, str(REFERENCE_STORY))
    second = links_of(captured, "ada@example.com")
    assert second["unsubscribe"].startswith("/unsubscribe/1.2.")
    out = ready("subscribers", "revoke-links", "ada@example.com").output
    assert "(link version 3)" in out
    with web_app(ready) as web:
        assert one_click(web, second["unsubscribe"]) == 410
        assert web.subscriber("ada@example.com").status == "active"


def test_revoke_links_retires_a_pending_address_s_confirmation_link(
    ready: Cli, captured: Captured
) -> None:
    with web_app(ready) as web:
        answer = web.client.post("/subscribe", data={"email": "new@example.com"})
        assert answer.status_code == 200
    [old] = confirmation_links(captured)
    ready("subscribers", "revoke-links", "new@example.com")
    with web_app(ready) as web:
        assert web.client.post(urlsplit(old).path).status_code == 410
        assert web.subscriber("new@example.com").status == "pending"


def test_revoke_links_of_an_unknown_address_is_one_line_and_exit_1(
    ready: Cli, captured: Captured
) -> None:
    ready("subscribers", "add", "ada@example.com")
    send_edition(ready, str(REFERENCE_STORY))
    before = links_of(captured, "ada@example.com")
    for address in ("nobody@example.com", "not an address"):
        result = ready("subscribers", "revoke-links", address, ok=False)
        assert result.exit_code == 1
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: ") and address in lines[0]
        assert "Traceback" not in result.output
    with web_app(ready) as web:  # nothing changed: ada's links still work
        assert one_click(web, before["unsubscribe"]) == 200

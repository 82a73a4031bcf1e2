"""The preflight: with an SMTP server that is not on loopback, `digest check`, `digest send`
and the web send refuse the local defaults (http/loopback links, an @localhost sender, no
postal address), one line per setting, before any connection; --force overrides.

A relay that is not on loopback cannot run here, so its name (relay.example.org) resolves
to the test SMTP server on 127.0.0.1: every lookup of it is recorded, and none means no
connection was attempted."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import REFERENCE_STORY, Captured, Cli
from subscriber_web import web_app

RELAY = "relay.example.org"
RIGHT = {
    "DIGEST_BASE_URL": "https://news.example.org",
    "DIGEST_FROM": "The Digest <digest@news.example.org>",
    "DIGEST_POSTAL_ADDRESS": "1 Example Street, 12345 Springfield",
}
PROBLEMS = [
    "DIGEST_BASE_URL 'http://127.0.0.1:8000' is not https and points at this machine:"
    " one-click unsubscribe (RFC 8058, required by Gmail and Yahoo) needs an https://"
    " link recipients can reach",
    "DIGEST_FROM 'Digest <digest@localhost>' has the domain 'localhost': use a domain"
    " you send from (with SPF, DKIM and DMARC)",
    "DIGEST_POSTAL_ADDRESS is empty: bulk mail must carry the sender's postal address",
]


@pytest.fixture
def relay(monkeypatch: pytest.MonkeyPatch, smtp_server: tuple[Captured, int]) -> Iterator[list]:
    """RELAY resolves to the test SMTP server; yields the list of its lookups."""
    lookups: list[str] = []
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == RELAY:
            lookups.append(host)
            host = "127.0.0.1"
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield lookups


@pytest.fixture
def through_relay(ready: Cli, smtp_server: tuple[Captured, int], relay: list[str]) -> Cli:
    """An edition (draft 1) for one subscriber, with DIGEST_SMTP_URL naming the relay."""
    ready("stories", "import", str(REFERENCE_STORY))
    ready("subscribers", "add", "reader@example.com")
    ready("edition", "build")
    ready.env["DIGEST_SMTP_URL"] = f"smtp://{RELAY}:{smtp_server[1]}"
    return ready


def test_preflight_check_names_each_local_default_once(through_relay: Cli, relay: list) -> None:
    result = through_relay("check", "1", ok=False)
    assert result.exit_code == 1
    assert result.output.splitlines() == [f"edition 1: {p}" for p in PROBLEMS]
    through_relay.env.update(RIGHT)
    assert through_relay("check", "1").output == "edition 1: ok\n"
    assert relay == []  # the check connects to nothing


def test_preflight_send_refuses_before_any_connection_unless_forced(
    through_relay: Cli, relay: list, captured: Captured
) -> None:
    refused = through_relay("send", ok=False)
    assert refused.exit_code == 1
    assert refused.output.splitlines() == [
        "Error: edition 1 failed the pre-send check (send --force to send anyway):",
        *(f"  {p}" for p in PROBLEMS),
    ]
    dry = through_relay("send", "--dry-run", ok=False)
    assert dry.exit_code == 1 and dry.output == refused.output
    assert relay == [] and captured.envelopes == []
    assert "edition 1: draft" in through_relay("status").output

    forced = through_relay("send", "--force")
    assert "sent 1, failed 0" in forced.output
    assert relay and len(captured.envelopes) == 1
    status = through_relay("status").output
    assert "pre-send check overridden with --force" in status
    assert "DIGEST_POSTAL_ADDRESS is empty" in status


def test_preflight_send_goes_through_the_relay_once_the_settings_are_right(
    through_relay: Cli, relay: list, captured: Captured
) -> None:
    through_relay.env.update(RIGHT)
    assert "sent 1, failed 0" in through_relay("send").output
    assert relay
    [message] = captured.messages()
    assert str(message["From"]) == RIGHT["DIGEST_FROM"]
    assert str(message["List-Unsubscribe"]).startswith("<https://news.example.org/unsubscribe/")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    html = message.get_body(("html",))
    assert html is not None and RIGHT["DIGEST_POSTAL_ADDRESS"] in html.get_content()


@pytest.mark.parametrize(
    ("smtp_url", "refused"),
    [
        ("smtp://127.0.0.1:1025", False),
        ("smtp://127.8.9.10:25", False),
        ("smtp://localhost:1025", False),
        ("smtp://LOCALHOST.:1025", False),
        ("smtp://mail.localhost:1025", False),
        ("smtp+starttls://[::1]:587", False),
        ("smtp://[::ffff:127.0.0.1]:25", False),
        ("maildir:///var/mail/digest", False),
        ("smtps://user:secret@relay.example.org", True),
        ("smtp+starttls://10.1.2.3:587", True),
        ("smtp://127.0.0.1.example.org:25", True),
        ("smtp://localhost.example.org:25", True),
        ("smtp://[2001:db8::1]:25", True),
    ],
)
def test_preflight_applies_only_when_the_smtp_server_is_not_on_loopback(
    ready: Cli, smtp_url: str, refused: bool
) -> None:
    ready("stories", "import", str(REFERENCE_STORY))
    ready.env["DIGEST_SMTP_URL"] = smtp_url
    result = ready("check", "next", ok=False)
    lines = result.output.splitlines()
    if refused:
        assert result.exit_code == 1
        assert lines == [f"next edition: {p}" for p in PROBLEMS]
    else:
        assert (result.exit_code, lines) == (0, ["next edition: ok"])


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("DIGEST_BASE_URL", "http://news.example.org", "is not https:"),
        ("DIGEST_BASE_URL", "https://localhost:8443", "points at this machine:"),
        ("DIGEST_FROM", "News <news@127.0.0.1>", "has the domain '127.0.0.1'"),
        ("DIGEST_POSTAL_ADDRESS", "   ", "is empty"),
    ],
)
def test_preflight_names_the_one_setting_still_wrong(
    through_relay: Cli, variable: str, value: str, named: str
) -> None:
    through_relay.env.update({**RIGHT, variable: value})
    result = through_relay("check", "1", ok=False)
    assert result.exit_code == 1
    [line] = result.output.splitlines()
    assert line.startswith(f"edition 1: {variable} ") and named in line


def test_preflight_web_send_refuses_unless_forced(
    through_relay: Cli, relay: list, captured: Captured, tmp_path: Path
) -> None:
    with web_app(through_relay) as web:
        refused = web.client.post("/api/editions/1/send", json={})
        draft = web.client.get("/api/editions/1").json()["status"]
        forced = web.client.post("/api/editions/1/send", json={"force": True})
    assert refused.status_code == 400
    for problem in PROBLEMS:
        assert problem in refused.json()["error"]
    assert draft == "draft" and relay == []
    assert forced.status_code == 202
    through_relay("worker", "--once")
    assert len(captured.envelopes) == 1 and relay


def test_one_click_header_only_with_an_https_base_url(
    ready: Cli, captured: Captured, tmp_path: Path
) -> None:
    ready("subscribers", "add", "reader@example.com")
    ready("stories", "import", str(REFERENCE_STORY))
    ready("send", "--now")
    (tmp_path / "second.txt").write_text("Second\nAnother story.\n- one\n", encoding="utf-8")
    ready("stories", "import", str(tmp_path / "second.txt"))
    ready.env["DIGEST_BASE_URL"] = "https://news.example.org"
    ready("send", "--now")
    over_http, over_https = captured.messages()
    assert str(over_http["List-Unsubscribe"]).startswith("<http://127.0.0.1:8000/unsubscribe/")
    assert "List-Unsubscribe-Post" not in over_http
    assert str(over_https["List-Unsubscribe"]).startswith("<https://news.example.org/unsubscribe/")
    assert over_https["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

"""The whole pipeline: seed story + subscribers -> edition -> real SMTP server."""

from __future__ import annotations

import csv
from html.parser import HTMLParser
from pathlib import Path

from conftest import REFERENCE_STORY, SEEDS, Captured, Cli


class TextOf(HTMLParser):
    """The visible text of an HTML document, whitespace collapsed."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag in ("style", "title", "head"):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "title", "head"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)

    @classmethod
    def of(cls, html: str) -> str:
        parser = cls()
        parser.feed(html)
        return " ".join(" ".join(parser.parts).split())


def reference_story() -> tuple[str, str, list[str]]:
    lines = REFERENCE_STORY.read_text(encoding="utf-8").splitlines()
    return lines[0], lines[1], [ln[2:] for ln in lines[2:] if ln.startswith("- ")]


def seed_subscribers() -> list[str]:
    with (SEEDS / "subscribers.csv").open(encoding="utf-8") as fh:
        return [row["email"] for row in csv.DictReader(fh)]


def test_send_delivers_seed_story_once_to_each_subscriber(
    ready: Cli, captured: Captured, story_dir: Path
) -> None:
    headline, summary, bullets = reference_story()
    ready("stories", "import", str(REFERENCE_STORY))
    ready("subscribers", "import", str(SEEDS / "subscribers.csv"))
    assert "built edition 1" in ready("edition", "build").output
    ready.env["DIGEST_BASE_URL"] = "https://news.example.org"  # one-click needs https
    out = ready("send", "1").output
    addresses = seed_subscribers()
    assert f"sent {len(addresses)}, failed 0" in out

    messages = captured.messages()
    assert sorted(rcpt for _, rcpts, _ in captured.envelopes for rcpt in rcpts) == sorted(addresses)
    assert len(messages) == len(addresses)
    for (_, rcpts, _), msg in zip(captured.envelopes, messages, strict=True):
        assert msg.get_content_type() == "multipart/alternative"
        assert msg["To"].addresses[0].addr_spec == rcpts[0]
        html_part = msg.get_body(preferencelist=("html",))
        text_part = msg.get_body(preferencelist=("plain",))
        assert html_part is not None and text_part is not None
        html_text = TextOf.of(html_part.get_content())
        plain = " ".join(text_part.get_content().split())
        for piece in (headline, summary, *bullets):
            assert " ".join(piece.split()) in html_text
            assert " ".join(piece.split()) in plain
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_send_twice_sends_nothing_new(ready: Cli, captured: Captured) -> None:
    ready("stories", "import", str(REFERENCE_STORY))
    ready("subscribers", "add", "reader@example.com", "--name", "Reader")
    ready("edition", "build")
    ready("send")
    again = ready("send", "latest").output
    assert "nothing new to send (1 of 1 deliveries already done)" in again
    assert len(captured.envelopes) == 1


def test_send_each_message_id_is_stable_per_subscriber(ready: Cli, captured: Captured) -> None:
    ready("stories", "import", str(REFERENCE_STORY))
    ready("subscribers", "add", "a@example.com")
    ready("subscribers", "add", "b@example.org")
    ready("edition", "build")
    ready("send")
    ids = [m["Message-ID"] for m in captured.messages()]
    assert len(set(ids)) == 2
    assert all(i.startswith("<digest.1.") for i in ids)


def test_send_records_a_refused_recipient_as_failed_and_the_rest_as_sent(
    ready: Cli, captured: Captured
) -> None:
    captured.reject["bad@example.com"] = "550 5.1.1 no such user"
    ready("stories", "import", str(REFERENCE_STORY))
    ready("subscribers", "add", "bad@example.com")
    ready("subscribers", "add", "good@example.com")
    ready("edition", "build")
    result = ready("send", ok=False)
    assert result.exit_code == 1
    assert "sent 1, failed 1" in result.output
    assert "bad@example.com: 550 5.1.1 no such user" in result.output
    status = ready("status", "1").output
    assert "finished" in status and "sent 1" in status and "failed 1" in status

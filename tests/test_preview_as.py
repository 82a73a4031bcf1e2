"""`digest preview --as EMAIL` and `digest send --dry-run` show each reader's own digest."""

from __future__ import annotations

import json

from conftest import Captured, Cli
from sqlalchemy import update

from digest.core.db import make_engine, session_factory, transaction
from digest.delivery import service
from subscribers.models import Subscriber

STORIES = [  # in this order in the edition (priority)
    {"headline": "Comet seen at dawn", "summary": "Bright.", "tags": ["science"], "priority": 3},
    {"headline": "Opera season opens", "summary": "Full house.", "tags": ["arts"], "priority": 2},
    {"headline": "Town hall repainted", "summary": "Blue now.", "tags": ["city"], "priority": 1},
]


def setup(cli: Cli) -> None:
    path = cli.cwd / "stories.json"
    path.write_text(json.dumps(STORIES), encoding="utf-8")
    cli("stories", "import", str(path))
    for email in ("sci@example.com", "arts@example.com", "sports@example.com"):
        cli("subscribers", "add", email)
    engine = make_engine(cli.settings().effective_database_url)
    try:
        with transaction(session_factory(engine)) as s:
            for email, topics in (
                ("sci@example.com", ["science"]),
                ("arts@example.com", ["arts", "city"]),
                ("sports@example.com", ["sports"]),
            ):
                s.execute(update(Subscriber).where(Subscriber.email == email).values(topics=topics))
    finally:
        engine.dispose()


def test_preview_as_shows_the_readers_own_stories_topics_and_subject(ready: Cli) -> None:
    setup(ready)
    for ref in ("next", "1"):
        if ref == "1":
            ready("edition", "build")
        text = ready("preview", ref, "--as", "SCI@example.com", "--format", "text").output
        assert "Comet seen at dawn" in text
        assert "Opera season opens" not in text and "Town hall repainted" not in text
        assert "Your topics: science" in text
        assert "/preferences/" in text and "@@" not in text
    eml = ready("preview", "1", "--as", "arts@example.com", "--format", "eml").output
    assert "Subject: The Digest #1: Opera season opens" in eml


def test_preview_as_of_a_started_edition_is_the_variant_the_delivery_carried(
    ready: Cli, captured: Captured
) -> None:
    setup(ready)
    ready("edition", "build")
    ready("send", "1")
    sent = {m["To"].addresses[0].addr_spec: m for m in captured.messages()}
    assert set(sent) == {"sci@example.com", "arts@example.com"}
    shown = ready("preview", "1", "--as", "arts@example.com", "--format", "text").output
    body = sent["arts@example.com"].get_body(("plain",))
    assert body is not None
    assert shown.replace("\r\n", "\n") == body.get_content().replace("\r\n", "\n")


def test_preview_as_a_reader_without_a_digest_or_unknown_is_one_line(ready: Cli) -> None:
    setup(ready)
    ready("edition", "build")
    result = ready("preview", "1", "--as", "sports@example.com", ok=False)
    assert result.exit_code == 1
    assert result.output == "Error: edition 1 has no digest for sports@example.com: nothing new\n"
    ready("send", "1")
    result = ready("preview", "1", "--as", "sports@example.com", ok=False)
    assert (
        result.exit_code == 1 and "edition 1 has no digest for sports@example.com" in result.output
    )
    result = ready("preview", "1", "--as", "nobody@example.com", ok=False)
    assert result.exit_code == 1
    assert result.output == "Error: 'nobody@example.com': no such subscriber\n"
    result = ready("preview", "1", "--as", "not an address", ok=False)
    assert result.exit_code == 1 and "Traceback" not in result.output


def test_dry_run_lists_each_readers_own_stories_and_who_gets_nothing(
    ready: Cli, captured: Captured
) -> None:
    setup(ready)
    ready("edition", "build")
    out = ready("send", "1", "--dry-run").output
    assert (
        "would send to sci@example.com: 1 story, subject 'The Digest #1: Comet seen at dawn'" in out
    )
    assert (
        "would send to arts@example.com: 2 stories, subject 'The Digest #1: Opera season opens'"
        in out
    )
    assert "sports@example.com" not in out
    assert "no digest for 1 subscribers with nothing new, 0 weekly readers not due" in out
    plan = json.loads(ready("send", "1", "--dry-run", "--json").output)
    assert {r["email"]: r["stories"] for r in plan["recipients"]} == {
        "sci@example.com": ["Comet seen at dawn"],
        "arts@example.com": ["Opera season opens", "Town hall repainted"],
    }
    assert captured.envelopes == []
    settings = ready.settings()
    engine = make_engine(settings.effective_database_url)
    try:
        service.open_send(settings, session_factory(engine), "1")  # started, nothing sent yet
    finally:
        engine.dispose()
    ready("subscribers", "add", "late@example.com")  # after the start: no row, not listed
    started = json.loads(ready("send", "1", "--dry-run", "--json").output)
    assert {r["email"]: r["subject"] for r in started["recipients"]} == {
        "sci@example.com": "The Digest #1: Comet seen at dawn",
        "arts@example.com": "The Digest #1: Opera season opens",
    }
    assert started["skipped_nothing_new"] == 1

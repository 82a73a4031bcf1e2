"""Manual sends: --now, --to (test send, no ledger), --dry-run; status shows the schedule."""

from __future__ import annotations

import json

from conftest import REFERENCE_STORY, SEEDS, Captured, Cli

from digest.processes.sink import free_port


def test_send_now_builds_and_sends_the_new_stories(ready: Cli, captured: Captured) -> None:
    ready("stories", "import", str(REFERENCE_STORY))
    ready("subscribers", "add", "now@example.com")
    out = ready("send", "--now").output
    assert "built edition 1" in out and "sent 1, failed 0" in out
    assert len(captured.envelopes) == 1
    again = ready("send", "--now").output
    assert again == "no new stories: nothing to send\n"
    assert len(captured.envelopes) == 1


def test_send_now_that_fails_says_how_to_resume(ready: Cli, captured: Captured) -> None:
    ready("stories", "import", str(REFERENCE_STORY))
    ready("subscribers", "add", "now@example.com")
    down = Cli({**ready.env, "DIGEST_SMTP_URL": f"smtp://127.0.0.1:{free_port()}"}, ready.cwd)
    failed = down("send", "--now", ok=False)
    assert failed.exit_code == 1 and "`digest send 1` resumes" in failed.output
    again = ready("send", "--now").output  # nothing new, but the built edition waits
    assert "nothing to send" in again and "`digest send 1` resumes it" in again
    assert "sent 1, failed 0" in ready("send", "1").output  # and the hint was right
    assert len(captured.envelopes) == 1


def test_send_with_no_active_subscriber_refuses_and_keeps_the_draft(
    ready: Cli, captured: Captured
) -> None:
    ready("stories", "import", str(REFERENCE_STORY))
    ready("subscribers", "add", "gone@example.com")
    ready("subscribers", "unsubscribe", "gone@example.com")
    ready("edition", "build")
    refused = ready("send", "1", ok=False)
    assert refused.exit_code == 1
    assert "no active subscribers, nothing sent; the edition stays a draft" in refused.output
    assert "draft" in ready("status", "1").output and not captured.envelopes
    ready("subscribers", "add", "reader@example.com")  # someone to send to: it goes out
    assert "sent 1, failed 0" in ready("send", "1").output


def test_send_now_with_an_edition_id_is_a_usage_error(ready: Cli) -> None:
    result = ready("send", "1", "--now", ok=False)
    assert result.exit_code == 2 and "--now builds a new edition" in result.output


def test_send_to_one_address_records_nothing(ready: Cli, captured: Captured) -> None:
    ready("stories", "import", str(REFERENCE_STORY))
    ready("subscribers", "add", "member@example.com", "--name", "Member")
    ready("edition", "build")
    out = ready("send", "1", "--to", "editor@example.org").output
    assert "sent to editor@example.org (not recorded in the ledger)" in out
    [(_, rcpts, _)] = captured.envelopes
    assert rcpts == ["editor@example.org"]
    assert "draft" in ready("status", "1").output  # the edition was not started
    # A known subscriber gets their own name in the To header.
    ready("send", "next", "--to", "member@example.com", ok=False)  # no new stories left
    ready("send", "1", "--to", "member@example.com")
    assert captured.messages()[-1]["To"] == "Member <member@example.com>"
    out = ready("send", "1").output
    assert "sent 1, failed 0" in out  # the real send still goes to the subscriber


def test_send_to_gets_a_fresh_message_id_each_time(ready: Cli, captured: Captured) -> None:
    ready("stories", "import", str(REFERENCE_STORY))
    ready("subscribers", "add", "member@example.com")
    ready("edition", "build")
    first = ready("send", "1", "--to", "member@example.com").output
    second = ready("send", "1", "--to", "member@example.com").output
    ready("send", "1")  # the real send: the subscriber's own, lasting Message-ID
    tests, real = captured.messages()[:2], captured.messages()[2]
    ids = [str(m["Message-ID"]) for m in tests]
    assert len(set(ids)) == 2 and str(real["Message-ID"]) not in ids
    assert ids[0] in first and ids[1] in second  # the CLI reports the id it sent


def test_send_to_rejects_a_bad_address(ready: Cli, captured: Captured) -> None:
    ready("stories", "import", str(REFERENCE_STORY))
    ready("edition", "build")
    result = ready("send", "1", "--to", "not-an-address", ok=False)
    assert result.exit_code == 1 and "not-an-address" in result.output
    assert captured.envelopes == []


def test_send_dry_run_lists_recipients_and_sends_nothing(ready: Cli, captured: Captured) -> None:
    ready("stories", "import", str(SEEDS / "stories"))
    ready("subscribers", "import", str(SEEDS / "subscribers.csv"))
    out = ready("send", "--now", "--dry-run").output
    assert out.startswith("dry run, nothing sent: edition next,")
    assert "20 recipients; 0 already done" in out
    assert out.count("would send to") == 20
    plan = json.loads(ready("send", "--now", "--dry-run", "--json").output)
    assert len(plan["recipients"]) == 20 and plan["size"] > 10_000
    assert captured.envelopes == []
    assert ready("edition", "list", "--json").output.strip() == "[]"


def test_status_without_an_edition_shows_the_schedule(ready: Cli) -> None:
    ready.env["DIGEST_SCHEDULE"] = "30 6 * * mon-fri"
    ready.env["DIGEST_TIMEZONE"] = "Europe/Berlin"
    out = ready("status").output
    assert out.startswith("schedule '30 6 * * mon-fri' in Europe/Berlin; next slot 20")
    assert "the clock has not run yet" in out and "no editions yet" in out
    data = json.loads(ready("status", "--json").output)
    assert (data["edition"] is None and data["schedule"]["next_slot"].endswith(":00+01:00")) or (
        data["schedule"]["next_slot"].endswith(":00+02:00")
    )

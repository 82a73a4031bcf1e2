"""POST /inbound/mail: returned mail handed over by a relay, behind a shared secret;
and the per-edition bounce and complaint figures in the API and /metrics."""

from __future__ import annotations

from conftest import Captured, Cli
from returned_mail import BOUNCE_ADDRESS, complaint, dsn, reference_edition, sent_messages, statuses
from subscriber_web import web_app

SECRET = "relay-secret-123"


def sent_to_two(ready: Cli, captured: Captured) -> Cli:
    ready.env |= {"DIGEST_BOUNCE_ADDRESS": BOUNCE_ADDRESS}
    for address in ("a@example.net", "b@example.net"):
        ready("subscribers", "add", address)
    reference_edition(ready)
    return ready


def test_inbound_mail_without_the_setting_is_404(ready: Cli, captured: Captured) -> None:
    cli = sent_to_two(ready, captured)
    report = dsn(sent_messages(captured)["a@example.net"], "5.1.1")
    with web_app(cli) as web:
        answer = web.client.post(
            "/inbound/mail", content=report, headers={"Authorization": f"Bearer {SECRET}"}
        )
    assert answer.status_code == 404
    assert statuses(cli)["a@example.net"] == "active"


def test_inbound_mail_needs_the_secret_then_applies_the_policy_once(
    ready: Cli, captured: Captured
) -> None:
    cli = sent_to_two(ready, captured)
    sent = sent_messages(captured)
    report = dsn(sent["a@example.net"], "5.1.1")
    with web_app(cli, inbound_secret=SECRET) as web:
        post = web.client.post
        missing = post("/inbound/mail", content=report)
        wrong = post("/inbound/mail", content=report, headers={"Authorization": "Bearer nope"})
        basic = post("/inbound/mail", content=report, headers={"Authorization": f"Basic {SECRET}"})
        assert statuses(cli)["a@example.net"] == "active"  # nothing changed so far
        auth = {"Authorization": f"Bearer {SECRET}", "Content-Type": "message/rfc822"}
        first = post("/inbound/mail", content=report, headers=auth)
        again = post("/inbound/mail", content=report, headers=auth)
        spam = post("/inbound/mail", content=complaint(sent["b@example.net"]), headers=auth)
        junk = post("/inbound/mail", content=b"no headers here\n", headers=auth)
        progress = web.client.get("/api/editions/1").json()
        metrics = web.client.get("/metrics").text
    assert [r.status_code for r in (missing, wrong, basic)] == [403, 403, 403]
    assert missing.json() == {"error": "the inbound secret is missing or wrong"}
    assert first.status_code == 200
    assert first.json()["kind"] == "hard" and first.json()["changed"] == {"bounced": 1}
    assert again.status_code == 200 and again.json()["changed"] == {}
    assert spam.json()["changed"] == {"complained": 1}
    assert junk.status_code == 400
    assert junk.json() == {"error": "the posted message: not an email message (no header lines)"}
    assert statuses(cli) == {"a@example.net": "bounced", "b@example.net": "complained"}
    assert progress["returned"] == {"bounces": 1, "complaints": 1}
    assert 'digest_edition_bounces{edition="1"} 1\n' in metrics
    assert 'digest_edition_complaints{edition="1"} 1\n' in metrics

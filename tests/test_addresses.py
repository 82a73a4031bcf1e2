"""One mailbox, one subscriber; every address accepted is one that can be mailed.

Against the real CLI, the real web app and a real SMTP server (aiosmtpd on
127.0.0.1): the same address in another case is the same subscriber
everywhere it can come in, an internationalised domain goes out in its ASCII
form, and a non-ASCII local part is accepted only when the relay takes
SMTPUTF8 (``DIGEST_SMTPUTF8``) — then it is delivered with SMTPUTF8.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conftest import REFERENCE_STORY, Captured, Cli, running_smtp
from subscriber_web import web_app

IDN = "reader@bücher.example"
IDN_ASCII = "reader@xn--bcher-kva.example"


def send_an_edition(cli: Cli) -> str:
    cli("stories", "import", str(REFERENCE_STORY))
    cli("edition", "build")
    return cli("send", "latest", ok=False).output


def listed(cli: Cli, *options: str) -> list[tuple[str, str]]:
    rows = json.loads(cli("subscribers", "list", "--json", *options).output)
    return [(r["email"], r["status"]) for r in rows]


def write_csv(tmp_path: Path, text: str) -> str:
    path = tmp_path / "people.csv"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_address_in_another_case_is_one_subscriber_and_gets_one_message(
    ready: Cli, captured: Captured, tmp_path: Path
) -> None:
    ready("subscribers", "add", "ada@example.com", "--name", "Ada")
    again = ready("subscribers", "add", "ADA@EXAMPLE.COM", ok=False)
    assert again.exit_code == 1
    assert again.output == "Error: 'ADA@EXAMPLE.COM': already a subscriber (status active)\n"
    imported = ready("subscribers", "import", write_csv(tmp_path, "email\nADA@EXAMPLE.COM\n"))
    assert "imported 0 subscribers" in imported.output and "1 already" in imported.output
    with web_app(ready) as web:
        page = web.client.post("/subscribe", data={"email": "Ada@Example.Com"})
        api = web.client.post("/api/subscribers", json={"email": "ADA@example.com"})
    assert page.status_code == 200
    assert api.status_code == 400 and "already a subscriber" in api.json()["error"]
    assert listed(ready) == [("ada@example.com", "active")]
    assert captured.envelopes == []  # an active subscriber is not mailed a confirmation

    out = send_an_edition(ready)
    assert "sent 1, failed 0" in out
    assert [rcpts for _, rcpts, _ in captured.envelopes] == [["ada@example.com"]]

    # Leaving in any spelling is leaving: no more editions.
    assert ready("subscribers", "unsubscribe", "ADA@Example.COM").exit_code == 0
    assert listed(ready) == [("ada@example.com", "unsubscribed")]
    assert listed(ready, "--status", "active") == []
    # Erasing in one spelling suppresses every spelling.
    ready("subscribers", "erase", "Ada@example.COM", "--yes")
    assert listed(ready) == []
    back = ready("subscribers", "add", "ADA@example.com", ok=False)
    assert back.exit_code == 1 and "was erased and is suppressed" in back.output


def test_idn_domain_is_mailed_in_its_ascii_form(
    ready: Cli, captured: Captured, tmp_path: Path
) -> None:
    ready("subscribers", "add", IDN, "--name", "Reader")
    # IDNA 2008: ß is a letter of its own (IDNA 2003, Python's codec, made it "ss").
    ready("subscribers", "add", "anna@faß.example")
    # The ASCII spelling of the same domain is the same mailbox.
    twice = ready("subscribers", "add", IDN_ASCII.upper(), ok=False)
    assert twice.exit_code == 1 and "already a subscriber" in twice.output
    out = send_an_edition(ready)
    assert "sent 2, failed 0" in out, out
    assert sorted(rcpts for _, rcpts, _ in captured.envelopes) == [
        ["anna@xn--fa-hia.example"],
        [IDN_ASCII],
    ]
    [data] = [data for _, rcpts, data in captured.envelopes if rcpts == [IDN_ASCII]]
    [to] = [line for line in data.split(b"\r\n") if line.startswith(b"To:")]
    assert to == f"To: Reader <{IDN_ASCII}>".encode()


def test_idn_domain_confirmation_mail_goes_to_its_ascii_form(
    ready: Cli, captured: Captured
) -> None:
    with web_app(ready) as web:
        page = web.client.post("/subscribe", data={"email": "Someone@Bücher.Example"})
    assert page.status_code == 200
    [(_, rcpts, _)] = captured.envelopes
    assert rcpts == ["Someone@xn--bcher-kva.example"]
    assert captured.messages()[0]["To"].addresses[0].addr_spec == "Someone@xn--bcher-kva.example"


def test_non_ascii_local_part_is_refused_in_one_line_without_smtputf8(
    ready: Cli, captured: Captured, tmp_path: Path
) -> None:
    added = ready("subscribers", "add", "jöran@example.com", ok=False)
    assert added.exit_code == 1
    assert added.output.count("\n") == 1 and "DIGEST_SMTPUTF8" in added.output
    assert added.output.startswith("Error: 'jöran@example.com': the part before the @ is not ASCII")
    name = write_csv(tmp_path, "email\nada@example.com\njöran@example.com\n")
    imported = ready("subscribers", "import", name, ok=False)
    assert imported.exit_code == 1
    assert f"{name}:3: 'jöran@example.com': the part before the @ is not ASCII" in imported.output
    assert f"{name}: nothing imported: 1 bad row" in imported.output
    with web_app(ready) as web:
        page = web.client.post("/subscribe", data={"email": "jöran@example.com"})
        api = web.client.post("/api/subscribers", json={"email": "jöran@example.com"})
    assert page.status_code == 400 and "SMTPUTF8" in page.text
    assert api.status_code == 400 and "SMTPUTF8" in api.json()["error"]
    assert listed(ready) == [] and captured.envelopes == []


@dataclass
class Options(Captured):
    """Captured, plus the MAIL FROM options of each message."""

    mail_options: list[list[str]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.mail_options.append(list(envelope.mail_options))
        return await super().handle_DATA(server, session, envelope)


@contextmanager
def smtputf8_cli(cli: Cli, offered: bool) -> Iterator[tuple[Cli, Options]]:
    """The CLI with DIGEST_SMTPUTF8=true, against a server that offers SMTPUTF8 or not."""
    handler = Options()
    with running_smtp(handler, enable_SMTPUTF8=offered) as port:
        env = {**cli.env, "DIGEST_SMTPUTF8": "true", "DIGEST_SMTP_URL": f"smtp://127.0.0.1:{port}"}
        yield Cli(env, cli.cwd), handler


def test_non_ascii_local_part_is_delivered_with_smtputf8_when_the_relay_takes_it(
    ready: Cli, tmp_path: Path
) -> None:
    with smtputf8_cli(ready, offered=True) as (cli, server):
        cli("subscribers", "add", "jöran@bücher.example", "--name", "Jöran")
        people = write_csv(tmp_path, "email\nJÖRAN@BÜCHER.EXAMPLE\nada@x.org\n")
        cli("subscribers", "import", people)
        assert listed(cli) == [("jöran@bücher.example", "active"), ("ada@x.org", "active")]
        out = send_an_edition(cli)
    assert "sent 2, failed 0" in out, out
    by_rcpt = {rcpts[0]: data for _, rcpts, data in server.envelopes}
    options = dict(zip([r[0] for _, r, _ in server.envelopes], server.mail_options, strict=True))
    assert set(by_rcpt) == {"jöran@xn--bcher-kva.example", "ada@x.org"}
    assert "SMTPUTF8" in options["jöran@xn--bcher-kva.example"]
    assert "SMTPUTF8" not in options["ada@x.org"]
    [to] = [ln for ln in by_rcpt["jöran@xn--bcher-kva.example"].split(b"\r\n") if ln[:3] == b"To:"]
    assert to == "To: =?utf-8?b?SsO2cmFu?= <jöran@xn--bcher-kva.example>".encode()


def test_non_ascii_local_part_fails_alone_when_the_server_lacks_smtputf8(ready: Cli) -> None:
    """DIGEST_SMTPUTF8 says the relay takes it, but this server does not offer it: that
    address's delivery fails as not sent (never unknown) and everyone else is mailed."""
    with smtputf8_cli(ready, offered=False) as (cli, server):
        cli("subscribers", "add", "zoë@example.com")
        cli("subscribers", "add", "ada@example.com")
        out = send_an_edition(cli)
        status = json.loads(cli("status", "latest", "--json").output)
    assert "sent 1, failed 1" in out, out
    assert [rcpts for _, rcpts, _ in server.envelopes] == [["ada@example.com"]]
    assert status["deliveries"].get("unknown", 0) == 0
    assert any(
        "zoë@example.com" in e and "not sent" in e and "SMTPUTF8" in e
        for e in map(str, status["last_errors"])
    ), status


def test_non_ascii_local_part_confirmation_mail_goes_with_smtputf8(ready: Cli) -> None:
    with smtputf8_cli(ready, offered=True) as (cli, server), web_app(cli) as web:
        page = web.client.post("/subscribe", data={"email": "jöran@bücher.example"})
    assert page.status_code == 200
    [(_, rcpts, data)] = server.envelopes
    assert rcpts == ["jöran@xn--bcher-kva.example"]
    assert "SMTPUTF8" in server.mail_options[0]
    assert "To: jöran@xn--bcher-kva.example".encode() in data.split(b"\r\n")

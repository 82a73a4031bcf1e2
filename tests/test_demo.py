"""`digest demo`: the whole pipeline on embedded defaults into a local Maildir, idempotently.

The demo always uses its own SQLite database and in-process SMTP sink, so these
tests take no database backend parameter.
"""

from __future__ import annotations

import csv
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from conftest import SEEDS, Cli


def seed_addresses() -> list[str]:
    with (SEEDS / "subscribers.csv").open(encoding="utf-8", newline="") as fh:
        return sorted(row["email"] for row in csv.DictReader(fh))


def maildir_messages(var: Path) -> list[EmailMessage]:
    return [
        message_from_bytes(p.read_bytes(), policy=policy.default)
        for p in sorted((var / "mail" / "new").iterdir())
    ]


def delivered_to(var: Path) -> list[str]:
    return sorted(str(m["Delivered-To"]) for m in maildir_messages(var))


def test_demo_sends_one_message_per_seed_subscriber(tmp_path: Path) -> None:
    var = tmp_path / "var"
    out = Cli({}, tmp_path)("demo", "--var-dir", str(var)).output
    assert "built edition 1\n" in out
    assert "edition 1: sent 20, failed 0, unknown 0 (0 done before)" in out
    assert f"messages are in the Maildir {var / 'mail'}/new (20 in all)\n" in out
    assert delivered_to(var) == seed_addresses()
    for message in maildir_messages(var):
        assert message["To"].addresses[0].addr_spec == message["Delivered-To"]
        assert message.get_content_type() == "multipart/alternative"
        assert str(message["Subject"]).startswith("The Digest #1: ")


def test_demo_run_twice_sends_nothing_twice(tmp_path: Path) -> None:
    var = tmp_path / "var"
    demo = Cli({}, tmp_path)
    demo("demo", "--var-dir", str(var))
    again = demo("demo", "--var-dir", str(var)).output
    assert "imported 0 new stories, 0 new subscribers" in again
    assert "edition 1: nothing new to send (20 of 20 deliveries already done)\n" in again
    assert f"messages are in the Maildir {var / 'mail'}/new (20 in all)\n" in again
    assert delivered_to(var) == seed_addresses()


def test_demo_relative_var_dir_lands_under_the_working_directory(tmp_path: Path) -> None:
    Cli({}, tmp_path)("demo", "--var-dir", "here")
    assert (tmp_path / "here" / "digest.db").is_file()
    assert len(delivered_to(tmp_path / "here")) == 20


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DIGEST_NEWSLETTER_NAME", "Production Weekly"),
        ("DIGEST_BASE_URL", "notaurl"),
        ("DIGEST_CONFIG", "/nonexistent/digest.toml"),
    ],
)
def test_demo_ignores_digest_settings(tmp_path: Path, variable: str, value: str) -> None:
    var = tmp_path / "var"
    Cli({variable: value}, tmp_path)("demo", "--var-dir", str(var))
    subjects = {str(m["Subject"]).split(":")[0] for m in maildir_messages(var)}
    assert subjects == {"The Digest #1"}

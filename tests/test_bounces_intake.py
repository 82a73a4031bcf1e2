"""`digest bounces scan` on Maildir and mbox files, `digest bounces import`, and
mailbox URLs that cannot be used."""

from __future__ import annotations

import mailbox
from pathlib import Path

import pytest
from bounce_samples import SAMPLES, UNSUBSCRIBE_TO
from conftest import Cli

SUMMARY = (
    "6 messages: 2 hard, 1 complaint, 1 auto-reply, 1 unsubscribe-request, 1 not-a-bounce; "
    "subscribers: none changed"  # none of these addresses is a subscriber here
)
KIND_LINES = [
    "hard ada@example.net grace@example.net 5.1.1",
    "complaint lin@example.com",
    "hard mo@example.biz 5.1.1",
    "auto-reply",
    "unsubscribe-request pat@example.com",
    "not-a-bounce",
]


def scan(tmp_path: Path, url: str, ok: bool = True) -> list[str]:
    env = {"DIGEST_BOUNCE_MAILBOX": url, "DIGEST_UNSUBSCRIBE_MAILTO": UNSUBSCRIBE_TO}
    Cli(env, tmp_path)("init")
    result = Cli(env, tmp_path)("bounces", "scan", ok=ok)
    return result.output.splitlines() + ([f"exit {result.exit_code}"] if not ok else [])


def lf(message: bytes) -> bytes:
    """Line ends made LF: the mailbox module rewrites some messages that way."""
    return message.replace(b"\r\n", b"\n")


def mbox_messages(path: Path | str) -> list[bytes]:
    box = mailbox.mbox(path)
    try:
        return [box.get_bytes(key) for key in box.iterkeys()]
    finally:
        box.close()


def make_maildir(path: Path) -> None:
    box = mailbox.Maildir(path, create=True)
    for index, make in enumerate(SAMPLES.values()):
        key = box.add(make())
        if index == 1:  # one message a mail reader already looked at: in cur/, flagged
            (path / "new" / key).rename(path / "cur" / f"{key}:2,RS")
    box.close()


def test_bounces_scan_maildir_moves_to_processed_subfolder(tmp_path: Path) -> None:
    path = tmp_path / "Maildir"
    make_maildir(path)

    lines = scan(tmp_path, f"maildir://{path}")

    assert sorted(line.split(": ", 1)[1] for line in lines[:-1]) == sorted(KIND_LINES)
    assert all(line.startswith(("new/", "cur/")) for line in lines[:-1])
    assert lines[-1] == f"maildir://{path}: {SUMMARY}; moved to {path}/.processed"
    inbox = mailbox.Maildir(path, create=False)
    assert len(inbox) == 0
    processed = inbox.get_folder("processed")
    assert sorted(lf(processed.get_bytes(k)) for k in processed.iterkeys()) == sorted(
        lf(make()) for make in SAMPLES.values()
    )
    assert all("S" in processed[k].get_flags() for k in processed.iterkeys())
    assert scan(tmp_path, f"maildir://{path}") == [f"maildir://{path}: nothing new"]


def test_bounces_scan_mbox_moves_to_processed_mbox(tmp_path: Path) -> None:
    path = tmp_path / "bounces.mbox"
    box = mailbox.mbox(path)
    for make in SAMPLES.values():
        box.add(make())
    box.close()

    lines = scan(tmp_path, f"mbox://{path}")

    assert lines[:-1] == [f"{i}: {line}" for i, line in enumerate(KIND_LINES)]
    assert lines[-1] == f"mbox://{path}: {SUMMARY}; moved to {path}.processed"
    assert mbox_messages(path) == []
    processed = [lf(message) for message in mbox_messages(f"{path}.processed")]
    assert processed == [lf(make()) for make in SAMPLES.values()]
    assert scan(tmp_path, f"mbox://{path}") == [f"mbox://{path}: nothing new"]

    box = mailbox.mbox(path)  # mail that arrives later is found by the next scan
    box.add(SAMPLES["qmail.eml"]())
    box.close()
    assert scan(tmp_path, f"mbox://{path}")[0] == "0: hard mo@example.biz 5.1.1"
    assert len(mbox_messages(f"{path}.processed")) == 7


def test_bounces_import_handles_files_and_leaves_them(tmp_path: Path) -> None:
    files = []
    for name, make in SAMPLES.items():
        (tmp_path / name).write_bytes(make())
        files.append(str(tmp_path / name))

    cli = Cli({"DIGEST_UNSUBSCRIBE_MAILTO": UNSUBSCRIBE_TO}, tmp_path)
    cli("init")
    result = cli("bounces", "import", *files)

    assert result.output.splitlines() == [
        *(f"{f}: {line}" for f, line in zip(files, KIND_LINES, strict=True)),
        SUMMARY,
    ]
    assert all(Path(f).exists() for f in files)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("", "setting DIGEST_BOUNCE_MAILBOX: not set (expected maildir://, mbox://, imaps://"),
        ("pop3://user:pw@host/", "setting DIGEST_BOUNCE_MAILBOX: unknown scheme 'pop3'"),
        ("/var/mail/bounces", "setting DIGEST_BOUNCE_MAILBOX: unknown scheme '/var/mail/bounces'"),
        (
            "imap://user:pw@mail.example.com/INBOX",
            "imap:// without TLS only to a loopback address: imap://user:***@mail.example.com",
        ),
        ("imaps://user:pw@127.0.0.1:99999/INBOX", "Port out of range"),
        ("imaps://user:pw@127.0.0.1:1/INBOX", "imaps://user:***@127.0.0.1:1/INBOX: cannot connect"),
        ("maildir://{tmp}/missing", "maildir://{tmp}/missing: not a Maildir"),
        ("mbox://{tmp}/missing.mbox", "mbox://{tmp}/missing.mbox: no such mbox file"),
    ],
)
def test_bounces_scan_unusable_mailbox_is_one_line(tmp_path: Path, url: str, expected: str) -> None:
    lines = scan(tmp_path, url.format(tmp=tmp_path), ok=False)
    assert lines[-1] == "exit 1"
    assert len(lines) == 2
    assert lines[0].startswith("Error: ")
    assert expected.format(tmp=tmp_path) in lines[0]
    assert ":pw@" not in lines[0]


def test_bounces_clock_job_scans_the_mailbox_and_logs_one_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from digest.core.db import make_engine, session_factory
    from digest.core.settings import load_settings
    from digest.processes.bounce_job import scan_bounces, wanted

    monkeypatch.chdir(tmp_path)
    Cli({}, tmp_path)("init")
    path = tmp_path / "Maildir"
    make_maildir(path)
    settings = load_settings(bounce_mailbox=f"maildir://{path}", unsubscribe_mailto=UNSUBSCRIBE_TO)
    engine = make_engine(settings.effective_database_url)
    settings.load_signing_key(engine)
    factory = session_factory(engine)
    assert wanted(settings)
    assert not wanted(load_settings(bounce_mailbox=f"maildir://{path}", bounce_interval_minutes=0))
    assert not wanted(load_settings())

    caplog.set_level("INFO", logger="digest.clock")
    assert scan_bounces(settings, factory) is True
    assert len(mailbox.Maildir(path, create=False)) == 0
    assert caplog.messages == [f"bounces scanned: maildir://{path}: {SUMMARY}"]

    caplog.clear()
    broken = load_settings(bounce_mailbox=f"maildir://{tmp_path}/gone")
    assert scan_bounces(broken, factory) is False  # the clock carries on
    engine.dispose()
    assert caplog.messages == [
        f"bounce scan failed: maildir://{tmp_path}/gone: not a Maildir (needs new/, cur/ and tmp/)"
    ]


def test_bounces_scan_that_cannot_put_messages_away_says_so_and_leaves_them(
    tmp_path: Path,
) -> None:
    path = tmp_path / "Maildir"
    make_maildir(path)
    (path / ".processed").write_text("in the way")  # the subfolder cannot be made

    lines = scan(tmp_path, f"maildir://{path}", ok=False)

    assert lines == [
        f"Error: maildir://{path}: cannot move messages to {path}/.processed: Not a directory",
        "exit 1",
    ]
    assert len(mailbox.Maildir(path, create=False)) == len(SAMPLES)

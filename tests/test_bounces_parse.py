"""`digest bounces parse`: what each returned message is, judged against real
bounce samples (Debian's python3-flufl.bounce) and our own samples."""

from __future__ import annotations

import json
import sys
from email import message_from_binary_file
from pathlib import Path
from typing import Any

import pytest
from bounce_samples import AUTO_REPLIES, EXPECTED, REPLIES, SAMPLES, UNSUBSCRIBE_TO
from conftest import Cli
from imap_server import ON_CI

DIST_PACKAGES = Path("/usr/lib/python3/dist-packages")
FLUFL_DATA = DIST_PACKAGES / "flufl" / "bounce" / "tests" / "data"


def flufl_scan() -> Any:
    """flufl.bounce.scan_message from the system's packages (Debian's python3-flufl.bounce)."""
    if not FLUFL_DATA.is_dir():
        reason = f"{FLUFL_DATA} missing: install Debian's python3-flufl.bounce (make test does)"
        if ON_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    sys.path.append(str(DIST_PACKAGES))  # last: the project's own packages still win
    try:
        from flufl.bounce import scan_message  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(DIST_PACKAGES))
    return scan_message


def write_samples(folder: Path, samples: dict[str, bytes]) -> list[str]:
    folder.mkdir(exist_ok=True)
    for name, data in samples.items():
        (folder / name).write_bytes(data)
    return [str(folder / name) for name in samples]


def parse_json(tmp_path: Path, files: list[str], **env: str) -> list[dict[str, Any]]:
    result = Cli(env, tmp_path)("bounces", "parse", "--json", *files)
    return json.loads(result.output)  # type: ignore[no-any-return]


def test_bounces_parse_agrees_with_flufl_bounce_on_its_samples(tmp_path: Path) -> None:
    scan_message = flufl_scan()
    files = sorted(FLUFL_DATA.glob("*.txt"))
    theirs = {}
    for path in files:
        with path.open("rb") as handle:
            found = scan_message(message_from_binary_file(handle))
        theirs[str(path)] = {(a.decode() if isinstance(a, bytes) else a).lower() for a in found}
    ours = {
        item["file"]: {a.lower() for a in item["recipients"]}
        for item in parse_json(tmp_path, [str(p) for p in files])
    }

    judged = [name for name, found in theirs.items() if found]
    agree = [name for name in judged if ours[name] == theirs[name]]
    print(
        f"\nagreement with flufl.bounce: {len(agree)}/{len(judged)} "
        f"({100 * len(agree) / len(judged):.1f} %) of {len(files)} samples"
    )
    for name in sorted(set(judged) - set(agree)):
        theirs_, ours_ = sorted(theirs[name]), sorted(ours[name])
        print(f"  differs {Path(name).name}: flufl {theirs_}, ours {ours_}")
    assert len(judged) >= 90  # the samples are there, and flufl reads them
    assert len(agree) >= 0.95 * len(judged)


def test_bounces_parse_auto_replies_and_replies_are_never_bounces(tmp_path: Path) -> None:
    auto = parse_json(tmp_path, write_samples(tmp_path / "auto", AUTO_REPLIES))
    replies = parse_json(tmp_path, write_samples(tmp_path / "replies", REPLIES))

    assert [(Path(i["file"]).name, i["kind"]) for i in auto] == [
        (name, "auto-reply") for name in AUTO_REPLIES
    ]
    assert [(Path(i["file"]).name, i["kind"], i["recipients"]) for i in replies] == [
        (name, "not-a-bounce", []) for name in REPLIES
    ]


def test_bounces_parse_json_is_exact(tmp_path: Path) -> None:
    files = write_samples(tmp_path / "in", {name: make() for name, make in SAMPLES.items()})
    before = {f: Path(f).read_bytes() for f in files}

    result = Cli({"DIGEST_UNSUBSCRIBE_MAILTO": UNSUBSCRIBE_TO}, tmp_path)(
        "bounces", "parse", "--json", *files
    )

    assert json.loads(result.output) == [
        {"file": f, "kind": kind, "recipients": recipients, "status": status}
        for f, (kind, recipients, status) in zip(files, EXPECTED.values(), strict=True)
    ]
    assert {f: Path(f).read_bytes() for f in files} == before  # parse changes nothing


def test_bounces_parse_lines_without_json(tmp_path: Path) -> None:
    files = write_samples(tmp_path / "in", {"dsn.eml": SAMPLES["dsn.eml"]()})
    result = Cli({}, tmp_path)("bounces", "parse", *files)
    assert result.output == f"{files[0]}: hard ada@example.net grace@example.net 5.1.1\n"


def test_bounces_parse_mail_to_the_unsubscribe_address_only_with_it_set(tmp_path: Path) -> None:
    files = write_samples(tmp_path / "in", {"u.eml": SAMPLES["unsubscribe.eml"]()})
    assert parse_json(tmp_path, files)[0]["kind"] == "not-a-bounce"
    mailto = f"mailto:{UNSUBSCRIBE_TO}?subject=unsubscribe"
    assert parse_json(tmp_path, files, DIGEST_UNSUBSCRIBE_MAILTO=mailto)[0]["recipients"] == [
        "pat@example.com"
    ]


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (None, "no such file"),
        (b"", "not an email message (no header lines)"),
        (b"just some text\nwith lines\n", "not an email message (no header lines)"),
        (b"\x89PNG\r\n\x1a\n\x00\x00binary", "not an email message (no header lines)"),
        ("dir", "is a directory, not a message file"),
    ],
)
def test_bounces_parse_bad_file_is_one_line(
    tmp_path: Path, make: bytes | str | None, problem: str
) -> None:
    good = write_samples(tmp_path / "in", {"dsn.eml": SAMPLES["dsn.eml"]()})[0]
    bad = tmp_path / "bad.eml"
    if isinstance(make, bytes):
        bad.write_bytes(make)
    elif make == "dir":
        bad.mkdir()
    for command in ("parse", "import"):
        result = Cli({}, tmp_path)("bounces", command, good, str(bad), ok=False)
        assert result.exit_code == 1
        assert result.output == f"Error: {bad}: {problem}\n"


def test_bounce_parse_keeps_what_a_policy_needs() -> None:
    from bounce_samples import arf_complaint, dsn_two_recipients, ours, out_of_office

    from digest.mail.bounce_parse import Failure, delivery_of, parse

    dsn = parse(dsn_two_recipients())
    assert dsn.kind == "hard"
    assert dsn.failures == (
        Failure(
            "ada@example.net",
            "hard",
            "5.1.1",
            "550 5.1.1 <ada@example.net>: Recipient address rejected: "
            "User unknown in local recipient table",
        ),
        Failure("grace@example.net", "soft", "4.2.2", "452 4.2.2 Mailbox full"),
    )
    assert dsn.message_ids == (ours(12, 4),)
    assert dsn.deliveries == [(12, 4)]

    complaint = parse(arf_complaint())
    assert (complaint.feedback_type, complaint.deliveries) == ("abuse", [(12, 9)])
    assert complaint.list_unsubscribe == "<https://news.example.org/unsubscribe/TOKEN>"

    assert parse(out_of_office()).deliveries == [(12, 5)]  # named by In-Reply-To

    verp = dsn_two_recipients().replace(
        b"To: bounces@news.example.org", b"To: bounces+12.4.tag@news.example.org", 1
    )
    assert parse(verp).verp_tokens == ("12.4.tag",)
    assert delivery_of("<something@else.example>") is None


def test_bounce_parse_report_naming_nobody_is_read_from_the_returned_message() -> None:
    from bounce_samples import BOUNCE_TO, original_headers

    from digest.mail.bounce_parse import parse

    report = f"""From: "Mail Gateway" <gateway@relay.example.com>
To: {BOUNCE_TO}
Subject: Mail could not be delivered
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="X"

--X
Content-Type: text/plain

The following mail could not be delivered.
Reason: Exceeded Maximum Delivery Attempts. Verify that the recipient address is correct.

--X
Content-Type: message/rfc822

{original_headers(7, 21, "Noor <noor@example.org>")}
Hello.
--X--
""".replace("\n", "\r\n").encode()

    result = parse(report)

    assert (result.kind, result.recipients, result.deliveries) == (
        "hard",
        ["noor@example.org"],
        [(7, 21)],
    )

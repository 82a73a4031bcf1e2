"""`digest subscribers import` edge cases and options: --pending, --update, --skip-invalid."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import Captured, Cli
from hypothesis import given
from hypothesis import strategies as st
from subscriber_web import confirmation_links

from digest.core.errors import SubscriberError
from subscribers.addresses import check_address


def listed(cli: Cli, *args: str) -> list[dict[str, Any]]:
    return json.loads(cli("subscribers", "list", "--json", *args).output)


def write(tmp_path: Path, data: str | bytes, name: str = "in.csv") -> str:
    path = tmp_path / name
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.write_bytes(data)
    return name


def test_import_bom_semicolons_quoted_commas_and_empty_lines(ready: Cli, tmp_path: Path) -> None:
    name = write(
        tmp_path,
        b'\xef\xbb\xbfemail;name;city\n\n"ada@example.com";"Lovelace, Ada; Countess";"London"\n'
        b"\n   \ngrace@example.org;Grace;New York\n;;\n",
    )
    assert ready("subscribers", "import", name).output == f"imported 2 subscribers from {name}\n"
    assert [(s["email"], s["name"]) for s in listed(ready)] == [
        ("ada@example.com", "Lovelace, Ada; Countess"),
        ("grace@example.org", "Grace"),
    ]


def test_import_duplicates_in_file_and_mixed_case_domains_are_one_subscriber(
    ready: Cli, tmp_path: Path
) -> None:
    ready("subscribers", "add", "known@example.net")
    name = write(
        tmp_path,
        "email,name\nada@example.com,Ada\nada@example.com,Ada\nada@EXAMPLE.COM,Ada 2\n"
        " ada@Example.com ,Ada 3\nknown@EXAMPLE.net,K\nAda@example.com,Other local part\n",
    )
    out = ready("subscribers", "import", name).output
    assert out == (
        f"imported 1 subscribers from {name} (1 already subscribers, 4 repeated in the file)\n"
    )
    # One mailbox, one subscriber: neither the local part's case nor the domain's counts.
    assert [(s["email"], s["name"]) for s in listed(ready)] == [
        ("known@example.net", ""),
        ("ada@example.com", "Ada"),
    ]


INVALID = "email,name\nada@example.com,Ada\nnot-an-address,Bob\n\ngrace@example.org,Grace\nx@y,Z\n"


def test_import_invalid_rows_reject_the_whole_file_by_default(ready: Cli, tmp_path: Path) -> None:
    name = write(tmp_path, INVALID)
    result = ready("subscribers", "import", name, ok=False)
    assert result.exit_code == 1
    assert f"{name}:3: 'not-an-address': invalid address" in result.output
    assert f"{name}:6: 'x@y': invalid address" in result.output
    assert f"{name}: nothing imported: 2 bad rows" in result.output
    assert listed(ready) == []


def test_import_skip_invalid_imports_the_rest_and_reports_each_row(
    ready: Cli, tmp_path: Path
) -> None:
    name = write(tmp_path, INVALID)
    result = ready("subscribers", "import", name, "--skip-invalid")
    assert result.exit_code == 0
    assert f"{name}:3: 'not-an-address': invalid address" in result.stderr
    assert f"{name}:6: 'x@y': invalid address" in result.stderr
    assert result.stdout == f"imported 2 subscribers from {name} (2 invalid rows skipped)\n"
    assert [s["email"] for s in listed(ready)] == ["ada@example.com", "grace@example.org"]


def test_import_skip_invalid_still_refuses_a_file_without_email_column(
    ready: Cli, tmp_path: Path
) -> None:
    name = write(tmp_path, "mail\nada@example.com\n")
    result = ready("subscribers", "import", name, "--skip-invalid", ok=False)
    assert result.exit_code == 1 and "no 'email' column" in result.output


def test_import_pending_mails_each_new_address_a_confirmation(
    ready: Cli, tmp_path: Path, captured: Captured
) -> None:
    ready("subscribers", "add", "known@example.com")
    name = write(
        tmp_path, "email,name\nada@example.com,Ada\nknown@example.com,K\nbob@example.org,Bob\n"
    )
    out = ready("subscribers", "import", name, "--pending").output
    assert out == (
        f"imported 2 subscribers as pending from {name} (1 already subscribers)\n"
        "sent 2 confirmation mails\n"
    )
    assert sorted(r for _, rcpts, _ in captured.envelopes for r in rcpts) == [
        "ada@example.com",
        "bob@example.org",
    ]
    assert len(confirmation_links(captured)) == 2
    assert {s["email"]: s["status"] for s in listed(ready)} == {
        "known@example.com": "active",
        "ada@example.com": "pending",
        "bob@example.org": "pending",
    }
    # Importing again within the rate limit sends nothing more.
    again = ready("subscribers", "import", name, "--pending").output
    assert again == f"imported 0 subscribers as pending from {name} (3 already subscribers)\n"
    assert len(captured.envelopes) == 2


def test_import_pending_reminds_pending_addresses_once_the_rate_limit_allows(
    ready: Cli, tmp_path: Path, captured: Captured
) -> None:
    name = write(tmp_path, "email\nada@example.com\n")
    ready("subscribers", "import", name, "--pending")
    ready.env["DIGEST_CONFIRM_INTERVAL_MINUTES"] = "0"
    out = ready("subscribers", "import", name, "--pending").output
    assert out.endswith("sent 1 confirmation mails\n")
    assert len(captured.envelopes) == 2
    assert listed(ready)[0]["status"] == "pending"


def test_import_update_changes_names_but_never_a_suppressed_status(
    ready: Cli, tmp_path: Path
) -> None:
    first = write(
        tmp_path,
        "email,name,timezone,plan\nada@example.com,Ada,Europe/London,free\n"
        "gone@example.com,Gone,,free\nbounce@example.com,B,,free\n",
        "first.csv",
    )
    ready("subscribers", "import", first)
    ready("subscribers", "unsubscribe", "gone@example.com")
    second = write(
        tmp_path,
        "email,name,plan,status\nada@EXAMPLE.com,Ada Lovelace,paid,unsubscribed\n"
        "gone@example.com,Back Again,paid,active\nnew@example.com,New,paid,\n",
        "second.csv",
    )
    out = ready("subscribers", "import", second, "--update").output
    assert out == (
        f"imported 1 subscribers from {second} (1 updated, 1 already subscribers, 1 suppressed)\n"
        "suppressed: gone@example.com (unsubscribed)\n"
    )
    records = {
        r["email"]: r for r in json.loads(ready("subscribers", "export", "--format", "json").output)
    }
    ada = records["ada@example.com"]
    # Name and attributes change; the time zone (no column in the file) and status stay.
    assert (ada["name"], ada["timezone"], ada["status"]) == (
        "Ada Lovelace",
        "Europe/London",
        "active",
    )
    assert ada["attributes"] == {"plan": "paid"}
    gone = records["gone@example.com"]
    assert (gone["name"], gone["status"], gone["attributes"]) == (
        "Gone",
        "unsubscribed",
        {"plan": "free"},
    )
    # Without --update nothing known changes.
    third = write(tmp_path, "email,name\nada@example.com,Someone Else\n", "third.csv")
    ready("subscribers", "import", third)
    assert listed(ready, "--search", "ada")[0]["name"] == "Ada Lovelace"


def test_erase_then_reimport_is_suppressed_even_with_update(ready: Cli, tmp_path: Path) -> None:
    ready("subscribers", "add", "ada@example.com", "--name", "Ada")
    ready("subscribers", "erase", "ada@example.com", "--yes")
    name = write(tmp_path, "email,name\nada@EXAMPLE.com,Ada\n")
    for extra in ([], ["--update"], ["--pending"]):
        out = ready("subscribers", "import", name, *extra).output
        assert "suppressed: ada@EXAMPLE.com (erased)" in out
    assert listed(ready) == []


def test_import_20k_rows(ready: Cli, tmp_path: Path) -> None:
    lines = ["email;name;timezone;tier"] + [
        f"reader{i:05d}@Example{i % 7}.com;Reader {i};{'Europe/Paris' if i % 2 else ''};t{i % 3}"
        for i in range(20_000)
    ]
    name = write(tmp_path, "\n".join(lines) + "\n")
    assert (
        ready("subscribers", "import", name).output == f"imported 20000 subscribers from {name}\n"
    )
    exported = ready("subscribers", "export").output.splitlines()
    assert len(exported) == 20_001
    assert exported[-1].startswith("reader19999@Example0.com,Reader 19999,active,csv,")


@pytest.mark.slow
def test_import_100k_rows(ready: Cli, tmp_path: Path) -> None:
    lines = ["email,name"] + [f"r{i}@example.com,R {i}" for i in range(100_000)]
    name = write(tmp_path, "\n".join(lines) + "\n")
    assert (
        ready("subscribers", "import", name).output == f"imported 100000 subscribers from {name}\n"
    )
    assert ready("subscribers", "import", name).output == (
        f"imported 0 subscribers from {name} (100000 already subscribers)\n"
    )


LOCAL = st.text(st.sampled_from("abcXYZ019._%+-!#'"), min_size=1, max_size=12)
DOMAIN = st.sampled_from(
    [
        "example.com",
        "EXAMPLE.org",
        "xn--mller-kva.de",
        "müller.DE",
        "a..b.com",
        "localhost",
        "ex_ample.com",
        "-bad.com",
        "exa mple.com",
        "1.2.3.4",
        "[127.0.0.1]",
        "example.test",
    ]
)


@given(LOCAL, DOMAIN)
def test_check_address_fast_path_agrees_with_email_validator(local: str, domain: str) -> None:
    from email_validator import EmailNotValidError, validate_email

    address = f"{local}@{domain}"
    try:
        info = validate_email(address, check_deliverability=False)
        expected: str | None = info.normalized.lower()
    except EmailNotValidError:
        expected = None
    try:
        got: str | None = check_address(address, smtputf8=True)[1]
    except SubscriberError:
        got = None
    assert got == expected

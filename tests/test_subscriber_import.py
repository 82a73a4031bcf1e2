"""`digest subscribers add` and `digest subscribers import FILE.csv`: all or nothing."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import SEEDS, Cli

SEED_CSV = SEEDS / "subscribers.csv"


def subscribers(cli: Cli) -> list[dict[str, Any]]:
    return json.loads(cli("subscribers", "list", "--json").output)


def seed_rows() -> list[dict[str, str]]:
    with SEED_CSV.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_subscribers_import_seed_file_adds_twenty_active_subscribers(ready: Cli) -> None:
    out = ready("subscribers", "import", str(SEED_CSV)).output
    assert out == f"imported 20 subscribers from {SEED_CSV}\n"
    stored = subscribers(ready)
    assert len(stored) == 20
    assert {s["status"] for s in stored} == {"active"}
    assert [(s["email"], s["name"]) for s in stored] == [
        (r["email"], r["name"]) for r in seed_rows()
    ]
    names = {s["name"] for s in stored}
    assert "Smith, John Jr." in names
    assert {"Zoë Müller", "Rosa Álvarez", "Tomasz Wiśniewski"} <= names


def test_subscribers_import_seed_file_again_adds_nothing(ready: Cli) -> None:
    ready("subscribers", "import", str(SEED_CSV))
    before = subscribers(ready)
    again = ready("subscribers", "import", str(SEED_CSV)).output
    assert again == f"imported 0 subscribers from {SEED_CSV} (20 already subscribers)\n"
    assert subscribers(ready) == before


def test_subscribers_import_crlf_and_bom_file(ready: Cli, tmp_path: Path) -> None:
    (tmp_path / "win.csv").write_bytes(
        b"\xef\xbb\xbfEmail,Name\r\nada@example.com,Ada Lovelace\r\n\r\ngrace@example.org,Grace\r\n"
    )
    assert ready("subscribers", "import", "win.csv").output == (
        "imported 2 subscribers from win.csv\n"
    )
    assert [(s["email"], s["name"]) for s in subscribers(ready)] == [
        ("ada@example.com", "Ada Lovelace"),
        ("grace@example.org", "Grace"),
    ]


def test_subscribers_import_address_repeated_in_file_is_added_once(
    ready: Cli, tmp_path: Path
) -> None:
    (tmp_path / "twice.csv").write_text(
        "email\nada@example.com\nada@EXAMPLE.com\n", encoding="utf-8"
    )
    out = ready("subscribers", "import", "twice.csv").output
    assert out == "imported 1 subscribers from twice.csv (1 repeated in the file)\n"
    assert [s["email"] for s in subscribers(ready)] == ["ada@example.com"]


BAD_CSV = {
    "bad-address": (
        b"email,name\nada@example.com,Ada\nnot-an-address,Bob\ngrace@example.org,Grace\n",
        ["people.csv:3: 'not-an-address': invalid address"],
    ),
    "no-email-column": (
        b"mail,name\nada@example.com,Ada\n",
        ["people.csv:1: header row has no 'email' column"],
    ),
    "empty": (b"", ["people.csv:1: empty file (expected a header row)"]),
    "binary": (
        b"email,name\nada@example.com,\x00\x01\x02\xff\n",
        ["people.csv:1: binary file (contains NUL bytes)"],
    ),
    "not-utf8": (
        b"email,name\nada@example.com,Ad\xe9le\n",
        ["people.csv:2: not UTF-8 text"],
    ),
    "wrong-field-count": (
        b"email,name\nada@example.com,Ada,extra\ngrace@example.org,Grace\nbob@example.net\n",
        ["people.csv:2: 3 fields, header has 2", "people.csv:4: 1 fields, header has 2"],
    ),
}


@pytest.mark.parametrize("case", list(BAD_CSV))
def test_subscribers_import_bad_file_adds_no_one(ready: Cli, tmp_path: Path, case: str) -> None:
    data, problems = BAD_CSV[case]
    (tmp_path / "people.csv").write_bytes(data)
    result = ready("subscribers", "import", "people.csv", ok=False)
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0].startswith("Error: ")
    lines[0] = lines[0].removeprefix("Error: ")
    assert len(lines) == len(problems) + 1
    for line, problem in zip(lines, problems, strict=False):
        assert line.startswith(problem)
    noun = "row" if len(problems) == 1 else "rows"
    assert lines[-1] == f"people.csv: nothing imported: {len(problems)} bad {noun}"
    assert "Traceback" not in result.output
    assert subscribers(ready) == []


def test_subscribers_import_missing_file_is_one_line_error(ready: Cli) -> None:
    result = ready("subscribers", "import", "nowhere.csv", ok=False)
    assert result.exit_code == 1
    assert result.output == "Error: nowhere.csv: cannot read: No such file or directory\n"
    assert subscribers(ready) == []


def test_subscribers_add_stores_an_active_subscriber_with_name(ready: Cli) -> None:
    out = ready("subscribers", "add", "  ada@example.com ", "--name", "Ada Lovelace").output
    assert out == "added ada@example.com\n"
    [sub] = subscribers(ready)
    assert (sub["email"], sub["name"], sub["status"]) == (
        "ada@example.com",
        "Ada Lovelace",
        "active",
    )


@pytest.mark.parametrize("address", ["not-an-address", "two@@example.com", "a b@example.com", ""])
def test_subscribers_add_invalid_address_is_one_line_error(ready: Cli, address: str) -> None:
    result = ready("subscribers", "add", address, ok=False)
    assert result.exit_code == 1
    [line] = result.output.splitlines()
    assert line.startswith("Error: ")
    assert "address" in line
    assert subscribers(ready) == []


@pytest.mark.parametrize("again", ["a@example.com", "a@Example.COM", " a@EXAMPLE.com "])
def test_subscribers_add_existing_address_is_refused(ready: Cli, again: str) -> None:
    ready("subscribers", "add", "a@example.com", "--name", "First")
    result = ready("subscribers", "add", again, "--name", "Second", ok=False)
    assert result.exit_code == 1
    assert result.output == (f"Error: {again.strip()!r}: already a subscriber (status active)\n")
    assert [(s["email"], s["name"]) for s in subscribers(ready)] == [("a@example.com", "First")]


def test_subscribers_import_leaves_a_known_address_unchanged(ready: Cli, tmp_path: Path) -> None:
    ready("subscribers", "add", "ada@example.com", "--name", "Ada")
    (tmp_path / "people.csv").write_text(
        "email,name\nada@Example.com,Someone Else\ngrace@example.org,Grace\n", encoding="utf-8"
    )
    out = ready("subscribers", "import", "people.csv").output
    assert out == "imported 1 subscribers from people.csv (1 already subscribers)\n"
    assert [(s["email"], s["name"]) for s in subscribers(ready)] == [
        ("ada@example.com", "Ada"),
        ("grace@example.org", "Grace"),
    ]


def test_subscribers_import_stray_quote_is_blamed_on_its_own_line(
    ready: Cli, tmp_path: Path
) -> None:
    (tmp_path / "people.csv").write_text(
        "email,name\nada@example.com,Ada\n"
        '"grace@example.org,Grace\nbob@example.net,Bob\ncy@example.net,Cy\n',
        encoding="utf-8",
    )
    result = ready("subscribers", "import", "people.csv", ok=False)
    assert result.exit_code == 1
    assert result.output.startswith("Error: people.csv:3: ")
    assert subscribers(ready) == []

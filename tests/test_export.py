"""`digest subscribers export`, import round trips, suppression and erasure."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from conftest import Cli
from sqlalchemy import create_engine, text

from subscribers.addresses import key_hash

PEOPLE = (
    "email;name;timezone;plan;city\n"
    'ada@example.com;"Lovelace; Ada";Europe/London;pro;London\n'
    "grace@Example.ORG;Grace;;free;\n"
    "zoe@bücher.example;Zoë Müller;Europe/Berlin;;Köln\n"
)


def reset(database_url: str) -> None:
    """Throw the whole database away (the next `digest init` starts from empty)."""
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            tables = conn.execute(text("SELECT name FROM sqlite_master WHERE type='table'"))
            for (name,) in list(tables):
                conn.execute(text(f'DROP TABLE "{name}"'))
        else:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def rows(cli: Cli, *args: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(cli("subscribers", "export", *args).output)))


def test_export_then_import_into_an_empty_database_round_trips(
    ready: Cli, tmp_path: Path, database_url: str
) -> None:
    (tmp_path / "people.csv").write_text(PEOPLE, encoding="utf-8")
    assert "imported 3 subscribers" in ready("subscribers", "import", "people.csv").output
    ready("subscribers", "unsubscribe", "grace@example.org")
    first = ready("subscribers", "export").output
    exported = rows(ready)
    assert list(exported[0]) == [
        "email",
        "name",
        "status",
        "source",
        "timezone",
        "topics",
        "cadence",
        "created_at",
        "confirmed_at",
        "unsubscribed_at",
        "bounced_at",
        "complained_at",
        "paused_at",
        "city",
        "plan",
    ]
    assert [(r["email"], r["name"], r["status"], r["plan"], r["city"]) for r in exported] == [
        ("ada@example.com", "Lovelace; Ada", "active", "pro", "London"),
        ("grace@Example.ORG", "Grace", "unsubscribed", "free", ""),
        ("zoe@bücher.example", "Zoë Müller", "active", "", "Köln"),
    ]
    assert all(r["source"] == "csv" and r["confirmed_at"] for r in exported)
    (tmp_path / "export.csv").write_text(first, encoding="utf-8")

    reset(database_url)
    ready("init")
    assert "imported 3 subscribers" in ready("subscribers", "import", "export.csv").output
    assert ready("subscribers", "export").output == first


def test_export_json_and_status_filter(ready: Cli, tmp_path: Path) -> None:
    (tmp_path / "people.csv").write_text(PEOPLE, encoding="utf-8")
    ready("subscribers", "import", "people.csv")
    ready("subscribers", "unsubscribe", "ada@example.com")
    data = json.loads(ready("subscribers", "export", "--format", "json").output)
    assert data[0]["attributes"] == {"plan": "pro", "city": "London"}
    assert data[0]["timezone"] == "Europe/London"
    assert [r["email"] for r in rows(ready, "--status", "unsubscribed")] == ["ada@example.com"]
    ready("subscribers", "export", "-o", "out.csv")
    assert (tmp_path / "out.csv").read_text(encoding="utf-8").startswith("email,name,status")


def test_import_never_reactivates_a_suppressed_address(ready: Cli, tmp_path: Path) -> None:
    ready("subscribers", "add", "gone@example.com")
    ready("subscribers", "unsubscribe", "gone@example.com")
    (tmp_path / "again.csv").write_text(
        "email,name,status\ngone@EXAMPLE.com,Back,active\nnew@example.com,New,\n", encoding="utf-8"
    )
    out = ready("subscribers", "import", "again.csv").output
    assert out == (
        "imported 1 subscribers from again.csv (1 suppressed)\n"
        "suppressed: gone@EXAMPLE.com (unsubscribed)\n"
    )
    listed = json.loads(ready("subscribers", "list", "--json").output)
    assert [(s["email"], s["status"]) for s in listed] == [
        ("gone@example.com", "unsubscribed"),
        ("new@example.com", "active"),
    ]


def test_erase_removes_personal_data_and_blocks_reimport(
    ready: Cli, tmp_path: Path, database_url: str
) -> None:
    (tmp_path / "people.csv").write_text(PEOPLE, encoding="utf-8")
    ready("subscribers", "import", "people.csv")
    assert ready("subscribers", "erase", "ada@example.com", "--yes").output == (
        "erased ada@example.com\n"
    )
    assert "ada@" not in ready("subscribers", "export").output
    assert "ada@" not in ready("subscribers", "list").output
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as conn:
        dump = [tuple(r) for r in conn.execute(text("SELECT * FROM subscribers"))]
        hashes = list(conn.execute(text("SELECT key_hash, reason FROM suppressions")))
    engine.dispose()
    assert not any("ada" in str(v) or "Lovelace" in str(v) or "London" in str(v) for v in dump)
    assert [tuple(h) for h in hashes] == [(key_hash("ada@example.com"), "erased")]

    out = ready("subscribers", "import", "people.csv").output
    assert out.splitlines() == [
        "imported 0 subscribers from people.csv (2 already subscribers, 1 suppressed)",
        "suppressed: ada@example.com (erased)",
    ]
    result = ready("subscribers", "add", "ada@EXAMPLE.com", ok=False)
    assert "erased" in result.output and result.exit_code == 1


def test_erase_asks_first_and_unknown_address_is_an_error(ready: Cli) -> None:
    ready("subscribers", "add", "keep@example.com")
    result = ready("subscribers", "erase", "keep@example.com", ok=False)
    assert result.exit_code == 1 and "Aborted" in result.output
    assert "keep@example.com" in ready("subscribers", "list").output
    missing = ready("subscribers", "erase", "nobody@example.com", "--yes", ok=False)
    assert missing.output == "Error: 'nobody@example.com': no such subscriber\n"


def test_import_rejects_bad_time_zone_status_and_reports_lines(ready: Cli, tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text(
        "email,timezone,status\na@example.com,Mars/Base,\nb@example.com,,asleep\n"
        "c@example.com,UTC,active\n",
        encoding="utf-8",
    )
    result = ready("subscribers", "import", "bad.csv", ok=False)
    assert result.output.splitlines() == [
        "Error: bad.csv:2: unknown time zone 'Mars/Base'",
        "bad.csv:3: unknown status 'asleep'",
        "bad.csv: nothing imported: 2 bad rows",
    ]


def test_list_filters_by_source_and_search(ready: Cli, tmp_path: Path) -> None:
    (tmp_path / "people.csv").write_text(PEOPLE, encoding="utf-8")
    ready("subscribers", "import", "people.csv")
    ready("subscribers", "add", "cli@example.net", "--name", "Typed In")
    listed = json.loads(ready("subscribers", "list", "--source", "cli", "--json").output)
    assert [s["email"] for s in listed] == ["cli@example.net"]
    found = json.loads(ready("subscribers", "list", "--search", "LOVELACE", "--json").output)
    assert [s["email"] for s in found] == ["ada@example.com"]


def test_export_cells_a_spreadsheet_would_run_are_text_and_import_reads_them_back(
    ready: Cli, tmp_path: Path, database_url: str
) -> None:
    risky = (
        "email;name;plan;note\n"
        'ada@example.com;"=HYPERLINK(""http://evil.example"",""click"")";+1;@SUM(A1)\n'
        'grace@example.org;-2;\'quoted;"\tlead"\n'
    )
    (tmp_path / "risky.csv").write_text(risky, encoding="utf-8")
    assert "imported 2 subscribers" in ready("subscribers", "import", "risky.csv").output
    first = ready("subscribers", "export").output
    exported = {r["email"]: r for r in csv.DictReader(io.StringIO(first))}
    # Every cell that starts a formula is marked as text; nothing else changes.
    assert exported["ada@example.com"]["name"] == '\'=HYPERLINK("http://evil.example","click")'
    assert exported["ada@example.com"]["plan"] == "'+1"
    assert exported["ada@example.com"]["note"] == "'@SUM(A1)"
    assert exported["grace@example.org"]["name"] == "'-2"
    assert exported["grace@example.org"]["plan"] == "''quoted"
    assert exported["grace@example.org"]["note"] == "'\tlead"
    assert not any(cell[:1] in "=+-@\t\r" for r in exported.values() for cell in r.values() if cell)
    # The export imported into an empty database gives the same values back.
    reset(database_url)
    ready("init")
    (tmp_path / "again.csv").write_text(first, encoding="utf-8")
    assert "imported 2 subscribers" in ready("subscribers", "import", "again.csv").output
    assert ready("subscribers", "export").output == first
    shown = json.loads(ready("subscribers", "export", "--format", "json").output)
    by_email = {r["email"]: r for r in shown}
    assert by_email["ada@example.com"]["name"].startswith("=HYPERLINK(")
    assert by_email["grace@example.org"]["attributes"] == {"plan": "'quoted", "note": "\tlead"}

"""Topics and cadence per subscriber: the CLI, CSV import and export, the API, settings."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import Cli
from sqlalchemy import select
from subscriber_web import web_app

from digest.core.errors import SubscriberError
from digest.sources.formats import fields
from subscribers.models import Subscriber
from subscribers.preferences import check_tag


def listed(cli: Cli) -> dict[str, dict[str, Any]]:
    return {r["email"]: r for r in json.loads(cli("subscribers", "list", "--json").output)}


def prefs(cli: Cli) -> dict[str, tuple[list[str], str]]:
    return {e: (r["topics"], r["cadence"]) for e, r in listed(cli).items()}


def test_subscribers_add_set_and_list_show_topics_and_cadence(ready: Cli) -> None:
    added = ready("subscribers", "add", "ada@example.com", "--topics", " Science,climate,science ,")
    assert added.output == "added ada@example.com\n"
    ready("subscribers", "add", "bob@example.com", "--cadence", "WEEKLY")
    ready("subscribers", "add", "cy@example.com")
    assert prefs(ready) == {
        "ada@example.com": (["climate", "science"], "daily"),
        "bob@example.com": ([], "weekly"),
        "cy@example.com": ([], "daily"),
    }

    changed = ready("subscribers", "set", "ADA@example.com", "--cadence", "weekly")
    assert changed.output == "ada@example.com: weekly, climate, science\n"
    cleared = ready("subscribers", "set", "ada@example.com", "--topics", "")
    assert cleared.output == "ada@example.com: weekly, every topic\n"
    ready("subscribers", "set", "bob@example.com", "--topics", "space", "--cadence", "daily")
    assert prefs(ready)["ada@example.com"] == ([], "weekly")
    assert prefs(ready)["bob@example.com"] == (["space"], "daily")

    table = ready("subscribers", "list").output.splitlines()
    assert table[0].endswith("ada@example.com    (weekly, every topic)")
    assert table[1].endswith("bob@example.com    (daily, space)")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("set", "nobody@example.com", "--cadence", "weekly"), "'nobody@example.com': no such"),
        (("set", "ada@example.com", "--cadence", "hourly"), "unknown cadence 'hourly'"),
        (("set", "ada@example.com", "--topics", "a|b"), "topic 'a|b' contains '|'"),
        (("set", "ada@example.com", "--topics", "x" * 51), "longer than 50 characters"),
        (("set", "ada@example.com", "--topics", "ok,bad\x07"), "control character U+0007"),
        (("add", "new@example.com", "--cadence", "monthly"), "unknown cadence 'monthly'"),
        (("add", "new@example.com", "--topics", "a\u2028b"), "control character U+2028"),
    ],
)
def test_subscribers_bad_preference_is_one_line_and_changes_nothing(
    ready: Cli, args: tuple[str, ...], message: str
) -> None:
    ready("subscribers", "add", "ada@example.com", "--topics", "science")
    before = listed(ready)
    result = ready("subscribers", *args, ok=False)
    assert result.exit_code == 1
    [line] = result.output.splitlines()
    assert line.startswith("Error: ") and message in line, line
    assert listed(ready) == before


def test_subscribers_set_without_a_preference_is_a_usage_error(ready: Cli) -> None:
    ready("subscribers", "add", "ada@example.com")
    result = ready("subscribers", "set", "ada@example.com", ok=False)
    assert result.exit_code == 2 and "give --topics and/or --cadence" in result.output


def test_subscribers_default_cadence_comes_from_the_setting(ready: Cli, tmp_path: Path) -> None:
    weekly = Cli({**ready.env, "DIGEST_DEFAULT_CADENCE": "Weekly"}, ready.cwd)
    weekly("subscribers", "add", "ada@example.com")
    weekly("subscribers", "add", "bob@example.com", "--cadence", "daily")
    (tmp_path / "new.csv").write_text("email\ncy@example.com\n", encoding="utf-8")
    weekly("subscribers", "import", "new.csv")
    assert {e: c for e, (_, c) in prefs(ready).items()} == {
        "ada@example.com": "weekly",
        "bob@example.com": "daily",
        "cy@example.com": "weekly",
    }
    bad = Cli({**ready.env, "DIGEST_DEFAULT_CADENCE": "hourly"}, ready.cwd)
    result = bad("subscribers", "add", "dee@example.com", ok=False)
    assert result.output.splitlines() == [
        "Error: setting DIGEST_DEFAULT_CADENCE: Value error, must be one of daily, weekly,"
        " found 'hourly'"
    ]
    assert "dee@example.com" not in listed(ready)


@pytest.mark.parametrize(
    ("value", "day"), [("monday", 0), ("Friday", 4), ("sun", 6), ("3", 3), (" SATURDAY ", 5)]
)
def test_settings_weekly_day_takes_day_names_and_numbers(ready: Cli, value: str, day: int) -> None:
    assert ready.settings(weekly_day=value).weekly_day == day


@pytest.mark.parametrize("value", ["7", "funday", "-1"])
def test_settings_bad_weekly_day_is_one_line_naming_it(ready: Cli, value: str) -> None:
    bad = Cli({**ready.env, "DIGEST_WEEKLY_DAY": value}, ready.cwd)
    result = bad("subscribers", "list", ok=False)
    [line] = result.output.splitlines()
    assert result.exit_code == 1 and line.startswith("Error: setting DIGEST_WEEKLY_DAY: ")


@pytest.mark.parametrize("raw", ["Science", "  climate  ", "Ünïcode", "tab\tinside", "x" * 50])
def test_topic_rule_is_the_story_tag_rule(raw: str) -> None:
    assert (check_tag(raw),) == fields.tags([raw])


@pytest.mark.parametrize("raw", ["", "   ", "x" * 51, "a\nb", "a\u2029b", "nul\x00"])
def test_topic_rule_refuses_what_story_tags_refuse(raw: str) -> None:
    with pytest.raises(ValueError):
        fields.tags([raw])
    with pytest.raises(SubscriberError):
        check_tag(raw)


PEOPLE = (
    "email,name,topics,cadence\n"
    "ada@example.com,Ada,Science|climate|SPACE|science,weekly\n"
    "bob@example.com,Bob,,\n"
    "cy@example.com,Cy,politics,Daily\n"
)


def export_rows(cli: Cli) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(cli("subscribers", "export").output)))


def test_subscribers_csv_topics_and_cadence_round_trip(
    ready: Cli, tmp_path: Path, database_url: str
) -> None:
    from test_export import reset

    (tmp_path / "people.csv").write_text(PEOPLE, encoding="utf-8")
    ready("subscribers", "import", "people.csv")
    assert prefs(ready) == {
        "ada@example.com": (["climate", "science", "space"], "weekly"),
        "bob@example.com": ([], "daily"),
        "cy@example.com": (["politics"], "daily"),
    }
    first = ready("subscribers", "export").output
    assert [(r["email"], r["topics"], r["cadence"]) for r in export_rows(ready)] == [
        ("ada@example.com", "climate|science|space", "weekly"),
        ("bob@example.com", "", "daily"),
        ("cy@example.com", "politics", "daily"),
    ]
    as_json = json.loads(ready("subscribers", "export", "--format", "json").output)
    assert as_json[0]["topics"] == ["climate", "science", "space"]
    assert "topics" not in as_json[0]["attributes"]

    (tmp_path / "export.csv").write_text(first, encoding="utf-8")
    reset(database_url)
    ready("init")
    ready("subscribers", "import", "export.csv")
    assert ready("subscribers", "export").output == first


def test_subscribers_csv_update_changes_topics_and_cadence_it_has_columns_for(
    ready: Cli, tmp_path: Path
) -> None:
    ready("subscribers", "add", "ada@example.com", "--topics", "science", "--cadence", "weekly")
    ready("subscribers", "add", "bob@example.com", "--topics", "space")
    (tmp_path / "cadence.csv").write_text("email,cadence\nada@example.com,daily\n", "utf-8")
    ready("subscribers", "import", "cadence.csv", "--update")
    (tmp_path / "topics.csv").write_text("email,topics\nbob@example.com,\n", "utf-8")
    ready("subscribers", "import", "topics.csv", "--update")
    assert prefs(ready) == {
        "ada@example.com": (["science"], "daily"),
        "bob@example.com": ([], "daily"),
    }


def test_subscribers_csv_bad_topics_or_cadence_rejects_the_file(ready: Cli, tmp_path: Path) -> None:
    bad = (
        "email,topics,cadence\n"
        "ok@example.com,science,daily\n"
        "ada@example.com,science,fortnightly\n"
        "bob@example.com,science|" + "x" * 60 + ",weekly\n"
    )
    (tmp_path / "bad.csv").write_text(bad, encoding="utf-8")
    result = ready("subscribers", "import", "bad.csv", ok=False)
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "Error: bad.csv:3: unknown cadence 'fortnightly' (daily or weekly)",
        f"bad.csv:4: topic {'x' * 20!r}… longer than 50 characters",
        "bad.csv: nothing imported: 2 bad rows",
    ]
    assert listed(ready) == {}
    skipped = ready("subscribers", "import", "bad.csv", "--skip-invalid")
    assert "imported 1 subscribers" in skipped.output
    assert prefs(ready) == {"ok@example.com": (["science"], "daily")}


def test_api_subscribers_create_and_update_topics_and_cadence(ready: Cli) -> None:
    with web_app(ready, default_cadence="weekly") as web:
        c = web.client
        ada = c.post(
            "/api/subscribers",
            json={"email": "ada@example.com", "topics": ["Science", "climate", "science"]},
        )
        bob = c.post("/api/subscribers", json={"email": "bob@example.com", "cadence": "daily"})
        sid = ada.json()["id"]
        changed = c.patch(f"/api/subscribers/{sid}", json={"cadence": "daily"})
        retopic = c.patch(f"/api/subscribers/{sid}", json={"topics": ["space"]})
        renamed = c.patch(f"/api/subscribers/{sid}", json={"name": "Ada"})
        bad_cadence = c.patch(f"/api/subscribers/{sid}", json={"cadence": "hourly"})
        bad_topic = c.patch(f"/api/subscribers/{sid}", json={"topics": ["ok", "a|b"]})
        not_text = c.patch(f"/api/subscribers/{sid}", json={"topics": "space"})
        bad_new = c.post("/api/subscribers", json={"email": "cy@example.com", "topics": [""]})
        both = c.patch(f"/api/subscribers/{sid}", json={"name": "X", "cadence": "nope"})
        cleared = c.patch(f"/api/subscribers/{bob.json()['id']}", json={"topics": []})
        everyone = {s["email"]: s for s in c.get("/api/subscribers").json()}
    assert ada.status_code == 201
    assert ada.json()["topics"] == ["climate", "science"] and ada.json()["cadence"] == "weekly"
    assert bob.json()["topics"] == [] and bob.json()["cadence"] == "daily"
    assert changed.json()["cadence"] == "daily" and changed.json()["topics"] == [
        "climate",
        "science",
    ]
    assert retopic.json()["topics"] == ["space"]
    assert renamed.json()["topics"] == ["space"] and renamed.json()["cadence"] == "daily"
    assert bad_cadence.status_code == 400
    assert bad_cadence.json() == {"error": "unknown cadence 'hourly' (daily or weekly)"}
    assert bad_topic.status_code == 400 and "'a|b'" in bad_topic.json()["error"]
    assert not_text.status_code == 400 and bad_new.status_code == 400
    assert both.status_code == 400
    assert cleared.json()["topics"] == []
    assert everyone["ada@example.com"]["name"] == "Ada"  # the refused change kept nothing
    assert everyone["ada@example.com"]["topics"] == ["space"]
    assert "cy@example.com" not in everyone


def test_api_subscribers_csv_import_reads_topics_and_cadence(ready: Cli) -> None:
    with web_app(ready, default_cadence="weekly") as web:
        c = web.client
        report = c.post(
            "/api/subscribers/import",
            content=b"email,topics\nada@example.com,science|space\n",
            headers={"Content-Type": "text/csv"},
        )
        [ada] = c.get("/api/subscribers").json()
    assert report.json()["added"] == 1
    assert ada["topics"] == ["science", "space"] and ada["cadence"] == "weekly"


def test_subscribers_erase_clears_topics(ready: Cli) -> None:
    ready("subscribers", "add", "ada@example.com", "--topics", "health,science")
    ready("subscribers", "erase", "ada@example.com", "--yes")
    with web_app(ready) as web, web.factory() as s:
        [sub] = s.scalars(select(Subscriber)).all()
    assert sub.erased_at is not None and sub.topics == []

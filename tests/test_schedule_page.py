"""The operator's schedule page: the next slots of DIGEST_SCHEDULE and the clock's decisions."""

from __future__ import annotations

import re
from datetime import timedelta

from conftest import Cli
from subscriber_web import web_app

from digest.core.db import transaction, utcnow
from digest.core.status import RunOutcome
from digest.processes import runlog

SLOT_ROW = re.compile(r"<tr><td>(\w{3} \d{4}-\d\d-\d\d \d\d:\d\d)</td><td>([\d: -]+)</td></tr>")


def test_schedule_page_lists_the_next_slots_in_local_time(ready: Cli) -> None:
    with web_app(ready, schedule="30 6 * * mon", timezone="Europe/Berlin") as web:
        page = web.client.get("/schedule")
    slots = SLOT_ROW.findall(page.text)
    assert page.status_code == 200 and "<code>30 6 * * mon</code>" in page.text
    assert len(slots) == 10
    assert all(local.startswith("Mon ") and local.endswith(" 06:30") for local, _ in slots)
    assert all(utc.endswith((" 05:30", " 04:30")) for _, utc in slots)  # CET or CEST
    assert "The clock has recorded nothing yet" in page.text


def test_schedule_page_shows_the_clock_decisions(ready: Cli) -> None:
    with web_app(ready) as web:
        with transaction(web.factory) as s:
            slot = utcnow() - timedelta(days=1)
            runlog.record(
                s, "edition", RunOutcome.SKIPPED, "2 new stories, fewer than 3", "k1", slot
            )
            runlog.record(s, "feeds", RunOutcome.FAILED, "feed 1: timed out")
        page = web.client.get("/schedule").text
    assert '<td class="status">skipped</td>' in page
    assert "2 new stories, fewer than 3" in page and slot.strftime("%Y-%m-%d %H:%M") in page
    assert '<td class="status">failed</td>' in page and "feed 1: timed out" in page
    assert page.index("feed 1: timed out") < page.index("fewer than 3")  # newest first


def test_schedule_page_a_bad_schedule_is_a_400_naming_it(ready: Cli) -> None:
    with web_app(ready) as web:
        web.settings.schedule = "61 * * * *"
        page = web.client.get("/schedule")
    assert page.status_code == 400 and "DIGEST_SCHEDULE" in page.text
    assert 'class="problem"' in page.text

"""The operator's subscriber pages: list, search, filter, pages, add, import, export,
history, unsubscribe and erase, as the operator sees them and as the database holds them."""

from __future__ import annotations

import csv
import io
import re

from conftest import Cli
from sqlalchemy import func, select
from subscriber_web import web_app
from web_operator import csrf

from digest.core.db import transaction, utcnow
from digest.core.models import Delivery, Edition
from digest.core.status import DeliveryState, EditionStatus
from subscribers.models import Subscriber, Suppression

ROW = re.compile(r'<td><a href="/subscribers/\d+">([^<]*@[^<]*)</a></td>')


def listed(html: str) -> list[str]:
    """The addresses in the page's subscriber table, in order."""
    return ROW.findall(html)


def count(web: object) -> int:
    with web.factory() as s:  # type: ignore[attr-defined]
        return s.scalar(select(func.count()).select_from(Subscriber)) or 0


def test_subscribers_page_empty_state_instead_of_404(ready: Cli) -> None:
    with web_app(ready) as web:
        page = web.client.get("/subscribers")
    assert page.status_code == 200
    assert "No subscribers yet" in page.text
    assert 'name="csrf"' in page.text  # the add and import forms carry the token


def test_subscribers_page_search_filter_and_pages(ready: Cli) -> None:
    ready("subscribers", "add", "ada@example.com", "--name", "Ada Lovelace", "--topics", "space")
    ready("subscribers", "add", "bob@example.com", "--name", "Bob")
    ready("subscribers", "add", "cy@example.com", "--topics", "space,history")
    ready("subscribers", "unsubscribe", "bob@example.com")
    with web_app(ready) as web:
        c = web.client
        by_name = listed(c.get("/subscribers?search=lovelace").text)
        by_address = listed(c.get("/subscribers?search=CY@").text)
        unsubscribed = listed(c.get("/subscribers?status=unsubscribed").text)
        space = listed(c.get("/subscribers?topic=Space").text)
        nobody = c.get("/subscribers?search=zed").text
        bad_status = c.get("/subscribers?status=gone")
        bad_topic = c.get("/subscribers?topic=a%7Cb")
        with transaction(web.factory) as s:
            for i in range(60):
                s.add(Subscriber(email=f"p{i}@example.com", email_key=f"p{i}@example.com"))
        first = c.get("/subscribers")
        next_link = first.text.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0]
        second = c.get(next_link.replace("&amp;", "&")).text
    assert by_name == ["ada@example.com"]
    assert by_address == ["cy@example.com"]
    assert unsubscribed == ["bob@example.com"]
    assert space == ["ada@example.com", "cy@example.com"]
    assert "No subscriber matches these filters" in nobody
    assert bad_status.status_code == 400 and "unknown status &#39;gone&#39;" in bad_status.text
    assert 'class="problem"' in bad_status.text  # on the page, its forms still there
    assert bad_topic.status_code == 400 and "(a separator of topics)" in bad_topic.text
    assert len(listed(first.text)) == 50 and listed(first.text)[-1] == "p46@example.com"
    assert listed(second) == [f"p{i}@example.com" for i in range(47, 60)]
    assert 'rel="next"' not in second


def test_subscribers_page_add_stores_the_subscriber(ready: Cli) -> None:
    with web_app(ready) as web:
        c = web.client
        token = csrf(c, "/subscribers")
        added = c.post(
            "/subscribers",
            data={"csrf": token, "email": "Ada@Example.com", "name": "Ada", "topics": "space"},
            follow_redirects=True,
        )
        twice = c.post("/subscribers", data={"csrf": token, "email": "ada@example.com"})
        bad = c.post("/subscribers", data={"csrf": token, "email": "not an address"})
        forged = c.post("/subscribers", data={"csrf": "x", "email": "eve@example.com"})
        ada = web.subscriber("ada@example.com")
        total = count(web)
    assert added.status_code == 200 and "Subscriber added." in added.text
    assert "Ada@Example.com" in added.text
    assert (ada.name, ada.status, ada.source, ada.topics) == ("Ada", "active", "web", ["space"])
    assert twice.status_code == 400 and "already a subscriber" in twice.text
    assert bad.status_code == 400 and 'class="problem"' in bad.text
    assert forged.status_code == 403
    assert total == 1


def test_subscribers_page_import_reports_and_is_all_or_nothing(ready: Cli) -> None:
    ready("subscribers", "add", "known@example.com")
    good = (
        "email,name\nbob@example.com,Bob\ncy@example.com,Cy\n"
        "bob@example.com,Bob\nknown@example.com,K\n"
    )
    bad = "email,name\ndee@example.com,Dee\nnot-an-address,X\n"
    with web_app(ready) as web:
        c = web.client
        token = csrf(c, "/subscribers")
        report = c.post("/subscribers/import", data={"csrf": token, "csv": good})
        after_good = count(web)
        rejected = c.post("/subscribers/import", data={"csrf": token, "csv": bad})
        empty = c.post("/subscribers/import", data={"csrf": token, "csv": " "})
        after_bad = count(web)
    assert report.status_code == 200
    assert "Imported 2 subscribers." in report.text
    assert "Repeated in the file</dt><dd>1: bob@example.com" in report.text
    assert "Already subscribers</dt><dd>1: known@example.com" in report.text
    assert after_good == 3
    assert rejected.status_code == 400
    assert "nothing imported: 1 bad row" in rejected.text
    assert "<td>3</td>" in rejected.text  # the rejected row's line
    assert empty.status_code == 400 and "paste a CSV" in empty.text
    assert after_bad == 3  # dee@example.com, on a good row, was not imported either


def test_subscribers_page_export_is_the_cli_export(ready: Cli) -> None:
    ready("subscribers", "add", "ada@example.com", "--name", "=HYPERLINK(1)")
    ready("subscribers", "add", "bob@example.com")
    ready("subscribers", "unsubscribe", "bob@example.com")
    with web_app(ready) as web:
        everyone = web.client.get("/subscribers/export")
        active = web.client.get("/subscribers/export?status=active")
    cli_export = ready("subscribers", "export").output
    assert everyone.status_code == 200
    assert everyone.headers["content-type"].startswith("text/csv")
    assert "attachment" in everyone.headers["content-disposition"]
    assert everyone.text == cli_export
    rows = list(csv.DictReader(io.StringIO(everyone.text)))
    assert rows[0]["name"] == "'=HYPERLINK(1)"  # formula-safe
    assert [r["email"] for r in csv.DictReader(io.StringIO(active.text))] == ["ada@example.com"]


def test_subscriber_page_shows_history(ready: Cli) -> None:
    ready("subscribers", "add", "ada@example.com")
    with web_app(ready) as web:
        ada = web.subscriber("ada@example.com")
        with transaction(web.factory) as s:
            s.add(Edition(id=1, status=EditionStatus.FINISHED, created_at=utcnow()))
            s.flush()
            s.add(
                Delivery(
                    edition_id=1,
                    subscriber_id=ada.id,
                    state=DeliveryState.SENT,
                    message_id="<m@x>",
                    sent_at=utcnow(),
                )
            )
        ready("subscribers", "unsubscribe", "ada@example.com")
        page = web.client.get(f"/subscribers/{ada.id}")
        missing = web.client.get("/subscribers/999")
    assert page.status_code == 200
    assert '<a href="/editions/1">1</a></td><td class="status">sent</td>' in page.text
    assert "<td>created</td>" in page.text and "<td>confirmed</td>" in page.text
    assert "<td>unsubscribed</td>" in page.text
    assert missing.status_code == 404 and "no subscriber with id 999" in missing.text


def test_subscriber_page_unsubscribe(ready: Cli) -> None:
    ready("subscribers", "add", "ada@example.com")
    with web_app(ready) as web:
        sid = web.subscriber("ada@example.com").id
        token = csrf(web.client, f"/subscribers/{sid}")
        done = web.client.post(
            f"/subscribers/{sid}/unsubscribe", data={"csrf": token}, follow_redirects=True
        )
        again = web.client.post(
            f"/subscribers/{sid}/unsubscribe", data={"csrf": token}, follow_redirects=True
        )
        status = web.subscriber("ada@example.com").status
    assert "Unsubscribed: no further editions" in done.text
    assert "No change" in again.text
    assert status == "unsubscribed"


def test_subscriber_page_erase_needs_the_confirmation_step(ready: Cli) -> None:
    ready("subscribers", "add", "ada@example.com", "--name", "Ada")
    with web_app(ready) as web:
        c = web.client
        sid = web.subscriber("ada@example.com").id
        token = csrf(c, f"/subscribers/{sid}/erase")
        wrong = c.post(f"/subscribers/{sid}/erase", data={"csrf": token, "confirm": "bob@x.org"})
        kept = web.subscriber("ada@example.com")
        erased = c.post(
            f"/subscribers/{sid}/erase",
            data={"csrf": token, "confirm": "ADA@example.com"},
            follow_redirects=True,
        )
        gone = c.get(f"/subscribers/{sid}")
        with web.factory() as s:
            row = s.get(Subscriber, sid)
            suppressed = s.scalar(select(func.count()).select_from(Suppression))
    assert wrong.status_code == 400 and "type the subscriber address" in wrong.text
    assert kept.name == "Ada"
    assert erased.status_code == 200 and "Erased" in erased.text
    assert "ada@example.com" not in erased.text
    assert gone.status_code == 404
    assert row is not None and row.erased_at is not None and row.name == ""
    assert suppressed == 1


def test_subscribers_pages_need_operator_login(ready: Cli) -> None:
    with web_app(ready, admin_token="s3cret") as web:
        for url in ("/subscribers", "/subscribers/export", "/subscribers/1"):
            assert web.client.get(url).status_code == 401, url
        assert web.client.post("/subscribers", data={"email": "a@example.com"}).status_code == 401

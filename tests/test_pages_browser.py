"""The subscribers, stories, feeds, schedule and API pages in headless Chromium on a real
server: an operator adds a subscriber and imports a CSV, and no page scrolls sideways
at 375 px.

Debian's chromium driven by playwright (the `chromium` fixture in conftest): skipped
locally when it is missing, a failure on CI. Screenshots land in var/test-artifacts/.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conftest import Cli
from sqlalchemy import select
from test_web_browser import new_page, served
from web_operator import with_stories

from subscribers.models import Subscriber

PAGES = (
    "/subscribers",
    "/subscribers/1",
    "/subscribers/1/erase",
    "/stories",
    "/stories/1",
    "/feeds",
    "/schedule",
    "/api/docs",
)


def test_browser_operator_adds_a_subscriber_and_imports_a_csv(
    chromium: Any, ready: Cli, artifacts: Path
) -> None:
    with served(ready) as (base, factory):
        page = new_page(chromium, base)
        page.goto(f"{base}/subscribers")
        page.get_by_text("No subscribers yet").wait_for(timeout=5000)
        page.fill("#add-email", "ada@example.com")
        page.fill("#add-name", "Ada Lovelace")
        page.click("form.stack[action='/subscribers'] button")
        page.wait_for_url(f"{base}/subscribers?done=added")
        page.get_by_text("Subscriber added.").wait_for(timeout=5000)
        assert page.locator("td a", has_text="ada@example.com").count() == 1

        page.fill("#import-csv", "email,name\nbob@example.com,Bob\nada@example.com,Ada\n")
        page.click("form[action='/subscribers/import'] button")
        page.wait_for_url(f"{base}/subscribers/import")
        page.get_by_text("Imported 1 subscriber.").wait_for(timeout=5000)
        assert "ada@example.com" in page.locator("dl.facts").inner_text()  # already known
        page.screenshot(path=str(artifacts / "subscribers-import.png"), full_page=True)

        page.goto(f"{base}/subscribers")
        page.fill("#import-csv", "email\ncy@example.com\nnot an address\n")
        page.click("form[action='/subscribers/import'] button")
        page.get_by_text("nothing imported: 1 bad row").wait_for(timeout=5000)
        page.close()
    with factory() as s:
        stored = list(s.scalars(select(Subscriber.email).order_by(Subscriber.id)))
    assert stored == ["ada@example.com", "bob@example.com"]


def test_browser_operator_pages_do_not_scroll_sideways_at_375_px(
    chromium: Any, ready: Cli, artifacts: Path
) -> None:
    with_stories(ready, "a-rather-long-address-for-a-phone-screen@subdomain.example.com")
    with served(ready) as (base, _):
        page = new_page(chromium, base)
        page.set_viewport_size({"width": 375, "height": 800})
        for path in PAGES:
            response = page.goto(f"{base}{path}")
            assert response is not None and response.status == 200, path
            sheets = page.evaluate("document.styleSheets.length")
            assert sheets == 2, path  # app.css and pages.css, allowed by the CSP
            width = page.evaluate("document.scrollingElement.scrollWidth")
            inner = page.evaluate("window.innerWidth")
            name = path.strip("/").replace("/", "-")
            page.screenshot(path=str(artifacts / f"page-375-{name}.png"), full_page=True)
            assert width <= inner, f"{path}: {width} px wide at {inner} px"
        page.close()

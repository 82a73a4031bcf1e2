"""Helpers for operator web tests: stories and subscribers in place, CSRF tokens, waiting."""

from __future__ import annotations

import re
import time

from conftest import REFERENCE_STORY, Cli
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from digest.core.status import EditionStatus
from digest.editions import assemble

CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')
SCRIPT_STORY = {
    "headline": "Evil <script>window.__pwned = 1</script> headline",
    "summary": 'An image <img src=x onerror="window.__pwned = 2"> in the summary',
    "bullets": ['<svg onload="window.__pwned = 3"></svg> bullet'],
}


def with_stories(cli: Cli, *subscribers: str) -> Cli:
    cli("stories", "import", str(REFERENCE_STORY))
    for address in subscribers:
        cli("subscribers", "add", address)
    return cli


def csrf(client: TestClient, page: str = "/login", **kwargs: object) -> str:
    """The CSRF token of a form on ``page`` (the client keeps the cookie that goes with it)."""
    found = CSRF_RE.search(client.get(page, **kwargs).text)  # type: ignore[arg-type]
    assert found, page
    return found.group(1)


def wait_for_status(
    factory: sessionmaker[Session], edition_id: int, *wanted: EditionStatus, timeout: float = 15
) -> EditionStatus:
    deadline = time.monotonic() + timeout
    while True:
        with factory() as s:
            status = assemble.get(s, str(edition_id)).status
        if status in wanted or time.monotonic() > deadline:
            return status
        time.sleep(0.05)

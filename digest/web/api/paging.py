"""Keyset pagination for the API's lists: ``?limit=&cursor=``.

A page holds at most ``limit`` rows (default 100, at most 500) in id order;
when more follow, the answer's ``Link: <…>; rel="next"`` header (and
``X-Next-Cursor``) names the next page. The cursor is the last id of the page
before, so rows added meanwhile are neither skipped nor repeated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from fastapi import Depends, Query, Request, Response

from digest.core.models import MAX_ID

DEFAULT_LIMIT = 100
MAX_LIMIT = 500


class HasId(Protocol):
    @property
    def id(self) -> int: ...


T = TypeVar("T", bound=HasId)


@dataclass(frozen=True)
class Paging:
    limit: int
    cursor: int | None

    def fetch(self) -> int:
        """How many rows to ask for: one more than a page, to know whether another follows."""
        return self.limit + 1


def paging(
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="rows per page"),
    cursor: int | None = Query(
        None, ge=0, le=MAX_ID, description="the X-Next-Cursor of the page before"
    ),
) -> Paging:
    """A FastAPI dependency: the page asked for (400 for a bad limit or cursor)."""
    return Paging(limit, cursor)


def one_page(rows: Sequence[T], page: Paging, request: Request, response: Response) -> Sequence[T]:
    """The page's rows; sets the next page's headers on ``response`` when more follow."""
    if len(rows) <= page.limit:
        return rows
    rows = rows[: page.limit]
    cursor = rows[-1].id
    url = request.url.include_query_params(limit=page.limit, cursor=cursor)
    response.headers["Link"] = f'<{url.path}?{url.query}>; rel="next"'
    response.headers["X-Next-Cursor"] = str(cursor)
    return rows


PAGE_HEADERS: dict[int | str, dict[str, Any]] = {
    200: {
        "headers": {
            "Link": {"description": 'the next page, rel="next" (absent on the last page)'},
            "X-Next-Cursor": {"description": "the cursor of the next page"},
        }
    }
}

# The parameter default a list route takes its page from.
PAGE = Depends(paging)

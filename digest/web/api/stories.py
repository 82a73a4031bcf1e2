"""``/api/stories``: list stories, import them in the JSON story format."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi import APIRouter, Request, Response

from digest.core.db import transaction
from digest.editions import assemble
from digest.sources.formats import jsonfile
from digest.sources.ingest import ImportReport, store
from digest.web.api.paging import PAGE, PAGE_HEADERS, Paging, one_page
from digest.web.api.schemas import StoryImport, StoryIn, StoryOut
from digest.web.context import WebContext


def make_router(ctx: WebContext) -> APIRouter:
    router = APIRouter(tags=["stories"])

    @router.get("/stories", responses=PAGE_HEADERS)
    def list_stories(
        request: Request, response: Response, new: bool = False, page: Paging = PAGE
    ) -> list[StoryOut]:
        """Stories, oldest first, one page at a time (``Link`` names the next page);
        ``new=true``: only those the next edition would take (in no edition, not held back)."""
        with ctx.factory() as s:
            rows = assemble.list_stories(s, only_new=new, after_id=page.cursor, limit=page.fetch())
            return [
                StoryOut.model_validate(story.as_dict())
                for story in one_page(rows, page, request, response)
            ]

    @router.post("/stories", status_code=201)
    def import_stories(body: StoryIn | list[StoryIn]) -> StoryImport:
        """Import one story or a list (all or nothing), deduplicated like `stories import`."""
        items = body if isinstance(body, list) else [body]
        data = json.dumps([item.model_dump(exclude_none=True) for item in items]).encode()
        drafts = jsonfile.parse(Path("api"), data)
        report = ImportReport()
        with transaction(ctx.factory) as s:
            store(s, drafts, report)
            return StoryImport(
                added=[story.id for story in report.added],
                updated=[story.id for story in report.updated],
                duplicates=len(report.duplicates),
            )

    return router

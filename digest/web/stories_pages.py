"""The operator's stories page: stories waiting for the next edition, held back and used;
add one as a Markdown story file (the path `digest stories import` takes for a
``.md`` file); edit, hold back or release one that no started edition holds."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from digest.core.db import transaction
from digest.core.errors import DigestError
from digest.core.models import MAX_ID
from digest.editions import assemble
from digest.sources import editing
from digest.sources.ingest import ImportReport, import_data, is_editable
from digest.web.context import WebContext
from digest.web.errors import status_for

StoryId = PathParam(ge=1, le=MAX_ID, description="story id")
# The file name a story added here is parsed and recorded under (its source).
WEB_STORY = Path("web-form.md")
NOTICES = {
    "held": "Held back: no new edition takes it until you release it.",
    "released": "Released: the next edition takes it.",
    "edited": "Story saved.",
}
EXAMPLE = (
    "---\ntitle: A headline\nsummary: One sentence on what happened.\ntags: [news]\n---\n"
    "The body, in Markdown.\n"
)


def make_router(ctx: WebContext) -> APIRouter:
    router = APIRouter(dependencies=[Depends(ctx.access.require_operator)], include_in_schema=False)

    def listing(request: Request, status: int = 200, **extra: object) -> HTMLResponse:
        with ctx.factory() as s:
            return ctx.page(
                request,
                "stories.html",
                status,
                waiting=assemble.new_stories(s),
                held=editing.held(s),
                used=editing.used(s),
                example=EXAMPLE,
                **extra,
            )

    @router.get("/stories")
    def stories_page(request: Request) -> HTMLResponse:
        return listing(request, notice=NOTICES.get(request.query_params.get("done", ""), ""))

    @router.post("/stories")
    async def add_story(request: Request) -> Response:
        fields = await ctx.access.form(request)
        text = fields.get("markdown", "")
        report = ImportReport()
        try:
            with transaction(ctx.factory) as s:
                import_data(s, WEB_STORY, text.encode("utf-8"), report)
        except DigestError as exc:
            code, problem = status_for(exc)
            return listing(request, code, problem=problem, markdown=text)
        if report.added:
            notice = f"Story {report.added[0].id} added: the next edition takes it."
        elif report.updated:
            notice = f"Story {report.updated[0].id} updated (same guid, new text)."
        else:
            notice = "Already there: a story with the same text, URL or guid exists."
        return listing(request, notice=notice)

    def edit_page(
        request: Request, story_id: int, status: int = 200, **extra: object
    ) -> HTMLResponse:
        with ctx.factory() as s:
            story = editing.get(s, story_id)
            return ctx.page(
                request,
                "story_edit.html",
                status,
                story=story,
                editable=is_editable(s, story),
                edition=editing.edition_of(s, story),
                **extra,
            )

    @router.get("/stories/{story_id}")
    def story_page(request: Request, story_id: int = StoryId) -> HTMLResponse:
        return edit_page(request, story_id)

    @router.post("/stories/{story_id}")
    async def save_story(request: Request, story_id: int = StoryId) -> Response:
        fields = await ctx.access.form(request)
        change = editing.StoryEdit(
            headline=fields.get("headline", ""),
            summary=fields.get("summary", ""),
            bullets=fields.get("bullets", ""),
            url=fields.get("url", ""),
            tags=fields.get("tags", ""),
            priority=fields.get("priority", "0"),
        )
        try:
            with transaction(ctx.factory) as s:
                editing.edit(s, story_id, change)
        except DigestError as exc:
            code, problem = status_for(exc)
            return edit_page(request, story_id, code, problem=problem, change=change)
        return RedirectResponse("/stories?done=edited", status_code=303)

    def hold_route(held: bool) -> object:
        async def route(request: Request, story_id: int = StoryId) -> Response:
            await ctx.access.form(request)
            with transaction(ctx.factory) as s:
                editing.hold(s, story_id, held)
            done = "held" if held else "released"
            return RedirectResponse(f"/stories?done={done}", status_code=303)

        return route

    for action, held in (("hold", True), ("release", False)):
        router.add_api_route(
            f"/stories/{{story_id}}/{action}",
            hold_route(held),  # type: ignore[arg-type]
            methods=["POST"],
            name=f"{action}_story",
        )
    return router

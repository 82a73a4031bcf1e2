"""The operator's feeds page: follow a feed, stop following one, fetch now, and each
feed's last success and last error.

Following goes through ``digest.sources.feeds.add`` with the CLI's checks
(scheme, a host on a private address refused unless DIGEST_FEED_ALLOW_PRIVATE),
but never reads a file: a ``file://`` URL is refused from the web, whatever
the settings. A fetch is recorded on the feed, never raised.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from digest.core.db import transaction
from digest.core.errors import DigestError
from digest.core.models import MAX_ID
from digest.sources import feeds as feed_store
from digest.sources.fetch import FetchLimits
from digest.web.context import WebContext
from digest.web.errors import status_for

FeedId = PathParam(ge=1, le=MAX_ID, description="feed id")


def make_router(ctx: WebContext) -> APIRouter:
    router = APIRouter(dependencies=[Depends(ctx.access.require_operator)], include_in_schema=False)
    limits = FetchLimits.from_settings(ctx.settings, files=False)  # never file:// from the web

    def listing(request: Request, status: int = 200, **extra: object) -> HTMLResponse:
        with ctx.factory() as s:
            rows = feed_store.list_feeds(s)
            return ctx.page(request, "feeds.html", status, feeds=rows, **extra)

    @router.get("/feeds")
    def feeds_page(request: Request) -> HTMLResponse:
        removed = request.query_params.get("done") == "removed"
        return listing(
            request, notice="Feed no longer followed; its stories stay." if removed else ""
        )

    @router.post("/feeds")
    async def follow(request: Request) -> Response:
        fields = await ctx.access.form(request)
        url = fields.get("url", "")
        tags = [t for t in fields.get("tags", "").split(",") if t.strip()]
        try:
            backfill = int(fields.get("backfill") or 0)
        except ValueError:
            return listing(request, 400, problem="backfill must be a whole number", form=fields)
        try:
            with transaction(ctx.factory) as s:
                feed_id = feed_store.add(
                    s, url, fields.get("name", ""), tags, backfill, limits=limits
                ).id
        except DigestError as exc:
            code, problem = status_for(exc)
            return listing(request, code, problem=problem, form=fields)
        result = await run_in_threadpool(feed_store.fetch_one, ctx.factory, feed_id, limits)
        return listing(request, notice=f"Following. {feed_store.describe(result)}")

    @router.post("/feeds/{feed_id}/fetch")
    async def fetch_now(request: Request, feed_id: int = FeedId) -> Response:
        await ctx.access.form(request)
        [result] = await run_in_threadpool(feed_store.fetch_all, ctx.factory, limits, str(feed_id))
        line = feed_store.describe(result)
        if result.error:
            return listing(request, 502, problem=line)
        return listing(request, notice=line)

    @router.post("/feeds/{feed_id}/remove")
    async def unfollow(request: Request, feed_id: int = FeedId) -> Response:
        await ctx.access.form(request)
        with transaction(ctx.factory) as s:
            feed_store.remove(s, str(feed_id))
        return RedirectResponse("/feeds?done=removed", status_code=303)

    return router

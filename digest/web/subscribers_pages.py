"""Operator pages for subscribers: list (search, filters, pages), add, CSV import and
export, one subscriber's history, unsubscribe and erase (after a confirmation step).

Each page parses the request, calls one service (``subscribers.service``,
``subscribers.csv_export``, the CLI's CSV import through
``digest.web.csv_upload``) and renders; a service's error is the one line the
page shows, with a 4xx status, and nothing is stored.
"""

from __future__ import annotations

import io
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from digest.core.db import transaction
from digest.core.errors import DigestError, ImportRejected, SubscriberError
from digest.core.models import MAX_ID
from digest.web.context import WebContext
from digest.web.csv_upload import import_upload
from digest.web.errors import WebError, status_for
from subscribers import csv_export, service
from subscribers.models import Subscriber
from subscribers.status import SubscriberSource, SubscriberStatus

PAGE_SIZE = 50
SubscriberId = PathParam(ge=1, le=MAX_ID, description="subscriber id")
# What a redirect after a change says (a fixed set: nothing from the query is echoed).
NOTICES = {
    "added": "Subscriber added.",
    "unsubscribed": "Unsubscribed: no further editions go to this address.",
    "unchanged": "No change: the address was not subscribed.",
    "erased": "Erased: the personal data is gone; a hash keeps the address from being re-added.",
}
STATUSES = [s.value for s in SubscriberStatus]


def _status(raw: str) -> SubscriberStatus | None:
    if not raw:
        return None
    if raw not in STATUSES:
        raise SubscriberError("", f"unknown status {raw!r} (one of {', '.join(STATUSES)})")
    return SubscriberStatus(raw)


def make_router(ctx: WebContext) -> APIRouter:
    router = APIRouter(dependencies=[Depends(ctx.access.require_operator)], include_in_schema=False)

    def listing(
        request: Request,
        query: dict[str, str],
        cursor: int | None = None,
        status: int = 200,
        **extra: Any,
    ) -> HTMLResponse:
        wanted = _status(query.get("status", ""))
        with ctx.factory() as s:
            rows = service.list_subscribers(
                s,
                wanted,
                search=query.get("search") or None,
                topic=query.get("topic") or None,
                after_id=cursor,
                limit=PAGE_SIZE + 1,
            )
        more = len(rows) > PAGE_SIZE
        rows = rows[:PAGE_SIZE]
        next_query = {**{k: v for k, v in query.items() if v}}
        if more:
            next_query["cursor"] = str(rows[-1].id)
        return ctx.page(
            request,
            "subscribers.html",
            status,
            rows=rows,
            query=query,
            statuses=STATUSES,
            next_query=next_query if more else None,
            first_page=cursor is not None,
            notice=NOTICES.get(request.query_params.get("done", ""), ""),
            **extra,
        )

    @router.get("/subscribers")
    def subscribers_page(
        request: Request,
        search: str = Query("", max_length=200, pattern=r"^[^\x00]*$"),
        status: str = Query("", max_length=20),
        topic: str = Query("", max_length=50, pattern=r"^[^\x00]*$"),
        cursor: int | None = Query(None, ge=0, le=MAX_ID),
    ) -> Response:
        query = {"search": search, "status": status, "topic": topic}
        try:
            return listing(request, query, cursor)
        except DigestError as exc:  # a bad topic, say: the page says why
            code, problem = status_for(exc)
            return listing(request, {}, None, code, problem=problem)

    @router.post("/subscribers")
    async def add_subscriber(request: Request) -> Response:
        fields = await ctx.access.form(request)
        try:
            with transaction(ctx.factory) as s:
                service.add(
                    s,
                    fields.get("email", ""),
                    fields.get("name") or None,
                    source=SubscriberSource.WEB,
                    status=SubscriberStatus.ACTIVE,
                    timezone=fields.get("timezone") or None,
                    check_deliverability=ctx.settings.check_deliverability,
                    smtputf8=ctx.settings.smtputf8,
                    topics=[t for t in fields.get("topics", "").split(",") if t.strip()],
                    cadence=fields.get("cadence") or ctx.settings.default_cadence,
                )
        except DigestError as exc:
            code, problem = status_for(exc)
            return listing(request, {}, None, code, problem=problem, form=fields)
        return RedirectResponse("/subscribers?done=added", status_code=303)

    @router.post("/subscribers/import")
    async def import_csv(request: Request) -> Response:
        fields = await ctx.access.form(request)
        data = fields.get("csv", "").encode("utf-8")
        if not data.strip():
            return ctx.page(
                request, "subscribers_import.html", 400, problem="paste a CSV with an email column"
            )
        try:
            report = import_upload(ctx, data, pending=fields.get("pending") == "yes")
        except ImportRejected as exc:
            noun = "row" if len(exc.rows) == 1 else "rows"
            problem = f"nothing imported: {len(exc.rows)} bad {noun}"
            return ctx.page(
                request, "subscribers_import.html", 400, problem=problem, rejected=exc.rows
            )
        except DigestError as exc:
            code, problem = status_for(exc)
            return ctx.page(request, "subscribers_import.html", code, problem=problem)
        return ctx.page(request, "subscribers_import.html", report=report)

    @router.get("/subscribers/export")
    def export_csv(status: str = Query("", max_length=20)) -> Response:
        """The CSV `digest subscribers export` writes (formula-safe cells)."""
        wanted = _status(status)
        with ctx.factory() as s:
            records = csv_export.export_records(s, wanted)
        out = io.StringIO()
        csv_export.write_csv(records, out)
        return Response(
            out.getvalue(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="subscribers.csv"'},
        )

    def live(s: Any, subscriber_id: int) -> Subscriber:
        sub = service.by_id(s, subscriber_id)
        if sub is None:
            raise WebError(404, f"no subscriber with id {subscriber_id}")
        return sub

    @router.get("/subscribers/{subscriber_id}")
    def subscriber_page(request: Request, subscriber_id: int = SubscriberId) -> Response:
        with ctx.factory() as s:
            sub = live(s, subscriber_id)
            history = service.received(s, sub.id)
            return ctx.page(
                request,
                "subscriber.html",
                sub=sub,
                received=history,
                changes=service.status_changes(sub),
                notice=NOTICES.get(request.query_params.get("done", ""), ""),
            )

    @router.post("/subscribers/{subscriber_id}/unsubscribe")
    async def unsubscribe(request: Request, subscriber_id: int = SubscriberId) -> Response:
        await ctx.access.form(request)
        with transaction(ctx.factory) as s:
            changed = service.unsubscribe(s, live(s, subscriber_id).email)
        done = "unsubscribed" if changed else "unchanged"
        return RedirectResponse(f"/subscribers/{subscriber_id}?done={done}", status_code=303)

    @router.get("/subscribers/{subscriber_id}/erase")
    def confirm_erase(request: Request, subscriber_id: int = SubscriberId) -> Response:
        with ctx.factory() as s:
            return ctx.page(request, "subscriber_erase.html", sub=live(s, subscriber_id))

    @router.post("/subscribers/{subscriber_id}/erase")
    async def erase(request: Request, subscriber_id: int = SubscriberId) -> Response:
        fields = await ctx.access.form(request)
        with transaction(ctx.factory) as s:
            sub = live(s, subscriber_id)
            typed = fields.get("confirm", "").strip().lower()
            if typed not in (sub.email.lower(), sub.email_key):
                return ctx.page(
                    request,
                    "subscriber_erase.html",
                    400,
                    sub=sub,
                    problem="type the subscriber address to confirm the erasure",
                )
            service.erase(s, sub.email)
        return RedirectResponse("/subscribers?done=erased", status_code=303)

    return router

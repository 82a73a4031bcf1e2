"""``/api/subscribers``: list, add, change, erase and import (CSV) subscribers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request, Response
from fastapi import Path as PathParam

from digest.core.db import transaction
from digest.core.models import MAX_ID
from digest.web.api.paging import PAGE, PAGE_HEADERS, Paging, one_page
from digest.web.api.schemas import CsvImport, SubscriberIn, SubscriberOut, SubscriberPatch
from digest.web.context import WebContext
from digest.web.csv_upload import import_upload
from digest.web.errors import WebError
from subscribers import service
from subscribers.addresses import check_name, check_timezone
from subscribers.lifecycle import transition
from subscribers.models import Subscriber
from subscribers.preferences import set_preferences
from subscribers.status import SubscriberStatus

SubscriberId = PathParam(ge=1, le=MAX_ID, description="subscriber id")


def subscriber_out(sub: Subscriber) -> SubscriberOut:
    return SubscriberOut(
        id=sub.id,
        email=sub.email,
        name=sub.name,
        status=str(sub.status),
        source=sub.source,
        timezone=sub.timezone,
        topics=list(sub.topics or []),
        cadence=sub.cadence,
        created_at=sub.created_at,
    )


def make_router(ctx: WebContext) -> APIRouter:
    router = APIRouter(tags=["subscribers"])

    @router.get("/subscribers", responses=PAGE_HEADERS)
    def list_subscribers(
        request: Request,
        response: Response,
        status: SubscriberStatus | None = None,
        search: str | None = Query(None, max_length=200, pattern=r"^[^\x00]*$"),
        topic: str | None = Query(None, max_length=50, description="who chose this topic"),
        page: Paging = PAGE,
    ) -> list[SubscriberOut]:
        """Subscribers in id order, one page at a time (``Link`` names the next page)."""
        with ctx.factory() as s:
            rows = service.list_subscribers(
                s,
                status=status,
                search=search,
                topic=topic,
                after_id=page.cursor,
                limit=page.fetch(),
            )
            return [subscriber_out(sub) for sub in one_page(rows, page, request, response)]

    @router.get("/subscribers/{subscriber_id}")
    def one_subscriber(subscriber_id: int = SubscriberId) -> SubscriberOut:
        with ctx.factory() as s:
            return subscriber_out(live_subscriber(s, subscriber_id))

    @router.post("/subscribers", status_code=201)
    def add_subscriber(body: SubscriberIn) -> SubscriberOut:
        with transaction(ctx.factory) as s:
            sub = service.add(
                s,
                body.email,
                body.name,
                source="api",
                status=SubscriberStatus(body.status),
                timezone=body.timezone,
                check_deliverability=ctx.settings.check_deliverability,
                smtputf8=ctx.settings.smtputf8,
                topics=body.topics or [],
                cadence=body.cadence or ctx.settings.default_cadence,
            )
            return subscriber_out(sub)

    def live_subscriber(s: Any, subscriber_id: int) -> Subscriber:
        sub = s.get(Subscriber, subscriber_id)
        if sub is None or sub.erased_at is not None:
            raise WebError(404, f"no subscriber with id {subscriber_id}")
        assert isinstance(sub, Subscriber)
        return sub

    @router.patch("/subscribers/{subscriber_id}")
    def update_subscriber(
        body: SubscriberPatch, subscriber_id: int = SubscriberId
    ) -> SubscriberOut:
        with transaction(ctx.factory) as s:
            sub = live_subscriber(s, subscriber_id)
            if body.name is not None:
                sub.name = check_name(body.name)
            if body.timezone is not None:
                sub.timezone = check_timezone(body.timezone)
            set_preferences(sub, body.topics, body.cadence)
            if body.status is not None:
                transition(sub, SubscriberStatus(body.status))
            s.flush()
            return subscriber_out(sub)

    @router.delete("/subscribers/{subscriber_id}", status_code=204)
    def erase_subscriber(subscriber_id: int = SubscriberId) -> Response:
        """Erase: personal data deleted, the address kept only as a suppression hash."""
        with transaction(ctx.factory) as s:
            service.erase(s, live_subscriber(s, subscriber_id).email)
        return Response(status_code=204)

    @router.post(
        "/subscribers/import",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"text/csv": {"schema": {"type": "string"}}},
            }
        },
    )
    async def import_subscribers(request: Request) -> CsvImport:
        """Import a CSV (the `subscribers import` format), all or nothing."""
        report = import_upload(ctx, await request.body())
        return CsvImport(
            added=report.added,
            already_known=report.already_known,
            repeated_in_file=report.repeated_in_file,
            suppressed=report.suppressed,
        )

    return router

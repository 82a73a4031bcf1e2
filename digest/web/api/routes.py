"""The operator JSON API under ``/api`` (OpenAPI document at ``/api/openapi.json``).

Writes accept only ``application/json`` (or ``text/csv`` for the subscriber
import): a cross-site form can send neither without a CORS preflight, which
this app never grants, so the API needs no CSRF token even when open.
"""

from __future__ import annotations

import json
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from digest.core.db import transaction
from digest.core.models import Story
from digest.core.status import EditionStatus
from digest.delivery.report import progress_report
from digest.editions import assemble
from digest.mail.check import GMAIL_CLIP_BYTES
from digest.mail.confirmation import import_and_confirm
from digest.sources.formats import jsonfile
from digest.sources.ingest import ImportReport, store
from digest.web.context import WebContext, WebError
from digest.web.editions import apply_action, start_send
from digest.web.preview import MAX_ID, EditionId, SubscriberParam, build_preview
from subscribers import service
from subscribers.addresses import check_name, check_timezone
from subscribers.lifecycle import transition
from subscribers.models import Subscriber, SubscriberStatus

SubscriberId = PathParam(ge=1, le=MAX_ID, description="subscriber id")
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"description": why, "content": {"application/json": {"example": {"error": why}}}}
    for code, why in (
        (400, "bad input"),
        (401, "operator token required"),
        (404, "no such object"),
        (409, "not possible in the current state"),
        (413, "body too large"),
    )
}


class Error(BaseModel):
    error: str


class StoryIn(BaseModel):
    """One story in the JSON story format (see the README's story formats)."""

    model_config = ConfigDict(extra="forbid")
    headline: str
    summary: str
    bullets: list[str] | None = None
    body: str | None = None
    url: str | None = None
    guid: str | None = None
    tags: list[str] | None = None
    image_url: str | None = None
    image_alt: str | None = None
    published: str | None = None
    priority: int | None = None


class StoryOut(BaseModel):
    id: int
    headline: str
    summary: str
    bullets: list[str]
    url: str | None
    source: str
    tags: list[str]
    image_url: str | None
    image_alt: str | None
    priority: int
    published_at: str | None
    ingested_at: str


class StoryImport(BaseModel):
    added: list[int]
    updated: list[int]
    duplicates: int


class SubscriberIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str = Field(max_length=320)
    name: str | None = Field(None, max_length=200)
    timezone: str | None = Field(None, max_length=64)
    status: Literal["active", "pending"] = "active"


class SubscriberPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, max_length=200)
    timezone: str | None = Field(None, max_length=64)
    status: Literal["active", "paused", "unsubscribed", "bounced", "complained"] | None = None


class SubscriberOut(BaseModel):
    id: int
    email: str
    name: str
    status: str
    source: str
    timezone: str | None
    created_at: datetime


class CsvImport(BaseModel):
    added: int
    already_known: list[str]
    repeated_in_file: list[str]
    suppressed: list[tuple[str, str]]


class EditionOut(BaseModel):
    id: int
    status: EditionStatus
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    stories: int
    deliveries: dict[str, int]


class LastError(BaseModel):
    email: str
    state: str
    error: str


class Progress(BaseModel):
    id: int
    status: EditionStatus
    started_at: str | None
    finished_at: str | None
    deliveries: dict[str, int]
    rate: float
    eta_seconds: float | None
    last_errors: list[LastError]


class PreviewOut(BaseModel):
    subject: str
    preheader: str
    html: str
    text: str
    html_bytes: int
    gmail_clip_bytes: int
    clipped: bool
    problems: list[str]


class SendIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    force: bool = False


def subscriber_out(sub: Subscriber) -> SubscriberOut:
    return SubscriberOut(
        id=sub.id,
        email=sub.email,
        name=sub.name,
        status=str(sub.status),
        source=sub.source,
        timezone=sub.timezone,
        created_at=sub.created_at,
    )


def make_router(ctx: WebContext) -> APIRouter:
    async def writes_are_json(request: Request) -> None:
        if request.method in ("GET", "HEAD", "OPTIONS") or not await request.body():
            return
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        allowed = "text/csv" if request.url.path.endswith("/import") else "application/json"
        if ctype != allowed:
            raise WebError(415, f"send the body as {allowed}")

    router = APIRouter(
        dependencies=[Depends(ctx.require_operator), Depends(writes_are_json)],
        responses=ERRORS,
    )

    def progress(edition_id: int) -> Progress:
        with ctx.factory() as s:
            return Progress.model_validate(progress_report(s, assemble.get(s, str(edition_id))))

    # -- stories ----------------------------------------------------------------

    @router.get("/stories", tags=["stories"])
    def list_stories(new: bool = False) -> list[StoryOut]:
        """Stories, oldest first; ``new=true``: only those in no edition yet."""
        with ctx.factory() as s:
            rows = assemble.new_stories(s) if new else s.scalars(select(Story).order_by(Story.id))
            return [StoryOut.model_validate(story.as_dict()) for story in rows]

    @router.post("/stories", status_code=201, tags=["stories"])
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

    # -- subscribers ---------------------------------------------------------------

    @router.get("/subscribers", tags=["subscribers"])
    def list_subscribers(
        status: SubscriberStatus | None = None,
        search: str | None = Query(None, max_length=200, pattern=r"^[^\x00]*$"),
    ) -> list[SubscriberOut]:
        with ctx.factory() as s:
            rows = service.list_subscribers(s, status=status, search=search)
            return [subscriber_out(sub) for sub in rows]

    @router.post("/subscribers", status_code=201, tags=["subscribers"])
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
            )
            return subscriber_out(sub)

    def live_subscriber(s: Any, subscriber_id: int) -> Subscriber:
        sub = s.get(Subscriber, subscriber_id)
        if sub is None or sub.erased_at is not None:
            raise WebError(404, f"no subscriber with id {subscriber_id}")
        assert isinstance(sub, Subscriber)
        return sub

    @router.patch("/subscribers/{subscriber_id}", tags=["subscribers"])
    def update_subscriber(
        body: SubscriberPatch, subscriber_id: int = SubscriberId
    ) -> SubscriberOut:
        with transaction(ctx.factory) as s:
            sub = live_subscriber(s, subscriber_id)
            if body.name is not None:
                sub.name = check_name(body.name)
            if body.timezone is not None:
                sub.timezone = check_timezone(body.timezone)
            if body.status is not None:
                transition(sub, SubscriberStatus(body.status))
            s.flush()
            return subscriber_out(sub)

    @router.delete("/subscribers/{subscriber_id}", status_code=204, tags=["subscribers"])
    def erase_subscriber(subscriber_id: int = SubscriberId) -> Response:
        """Erase: personal data deleted, the address kept only as a suppression hash."""
        with transaction(ctx.factory) as s:
            service.erase(s, live_subscriber(s, subscriber_id).email)
        return Response(status_code=204)

    @router.post(
        "/subscribers/import",
        tags=["subscribers"],
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"text/csv": {"schema": {"type": "string"}}},
            }
        },
    )
    async def import_subscribers(request: Request) -> CsvImport:
        """Import a CSV (the `subscribers import` format), all or nothing."""
        data = await request.body()
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "upload.csv"
            path.write_bytes(data)
            report, _ = import_and_confirm(ctx.factory, ctx.settings, path)
        return CsvImport(
            added=report.added,
            already_known=report.already_known,
            repeated_in_file=report.repeated_in_file,
            suppressed=report.suppressed,
        )

    # -- editions -------------------------------------------------------------------

    @router.get("/editions", tags=["editions"])
    def list_editions() -> list[EditionOut]:
        with ctx.factory() as s:
            return [
                EditionOut(
                    id=e.id,
                    status=e.status,
                    created_at=e.created_at,
                    started_at=e.started_at,
                    finished_at=e.finished_at,
                    stories=n,
                    deliveries=counts,
                )
                for e, n, counts in assemble.list_editions(s)
            ]

    @router.post("/editions", status_code=201, tags=["editions"])
    def build_edition() -> Progress:
        """Build a draft edition from every new story (409 when there is none)."""
        with transaction(ctx.factory) as s:
            edition = assemble.build(s)
            edition_id = edition.id if edition else None
        if edition_id is None:
            raise WebError(409, "no new stories: nothing to build")
        return progress(edition_id)

    @router.get("/editions/{edition_id}", tags=["editions"])
    def edition_status(edition_id: int = EditionId) -> Progress:
        return progress(edition_id)

    def preview_out(ref: str, subscriber: int | None) -> PreviewOut:
        p = build_preview(ctx, ref, subscriber)
        return PreviewOut(
            subject=p.subject,
            preheader=p.preheader,
            html=p.html,
            text=p.text,
            html_bytes=p.html_bytes,
            gmail_clip_bytes=GMAIL_CLIP_BYTES,
            clipped=p.html_bytes > GMAIL_CLIP_BYTES,
            problems=p.problems,
        )

    @router.get("/editions/{edition_id}/preview", tags=["editions"])
    def preview_edition(
        edition_id: int = EditionId, subscriber: int | None = SubscriberParam
    ) -> PreviewOut:
        return preview_out(str(edition_id), subscriber)

    @router.get("/preview/next", tags=["editions"])
    def preview_next(subscriber: int | None = SubscriberParam) -> PreviewOut:
        """The next edition (from the new stories) as it would go out; nothing is created."""
        return preview_out("next", subscriber)

    @router.post("/editions/{edition_id}/send", status_code=202, tags=["editions"])
    def send_edition(body: SendIn | None = None, edition_id: int = EditionId) -> Progress:
        """Check the edition, then send it in the background; poll the status for progress."""
        start_send(ctx, edition_id, force=bool(body and body.force))
        return progress(edition_id)

    def action_route(action: str) -> Any:
        def act(edition_id: int = EditionId) -> Progress:
            apply_action(ctx, edition_id, action)
            return progress(edition_id)

        return act

    for action in ("pause", "resume", "cancel"):
        router.add_api_route(
            f"/editions/{{edition_id}}/{action}",
            action_route(action),
            methods=["POST"],
            tags=["editions"],
            name=f"{action}_edition",
            summary=f"{action.capitalize()} an edition",
            response_model=Progress,
        )

    return router

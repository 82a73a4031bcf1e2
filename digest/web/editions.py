"""Operator pages for editions: the list, a detail page with live progress, and actions.

Every action is a CSRF-checked POST. "Send" opens the edition for the workers
(``digest.processes.handoff``: render, check, start the ledger, defer queue
tasks) and returns; a `digest worker` sends it, never this process. The detail
page refreshes itself (a meta refresh: no script) while the edition runs, and
says "waiting for a worker" when none is alive.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from digest.core.db import transaction
from digest.core.errors import EditionError
from digest.core.status import EditionStatus
from digest.delivery import manual, service
from digest.delivery.figures import audience_counts, edition_figures
from digest.delivery.report import status_report
from digest.editions import assemble
from digest.processes.handoff import open_for_workers
from digest.transports.factory import open_transport
from digest.web.context import WebContext
from digest.web.errors import WebError
from digest.web.preview import EditionId

SENDABLE = (EditionStatus.DRAFT, EditionStatus.SCHEDULED, EditionStatus.RUNNING)


def start_send(ctx: WebContext, edition_id: int, force: bool = False) -> None:
    """Open edition ``edition_id`` for the workers; they send it.

    Problems the operator can fix (wrong status, failed pre-send check, no
    active subscriber) are raised here, before anything starts.
    """
    with ctx.factory() as s:
        edition = assemble.get(s, str(edition_id))
        if edition.status not in SENDABLE:
            raise EditionError(f"edition {edition_id} is {edition.status}, not sendable")
    open_for_workers(ctx.settings, ctx.factory, str(edition_id), force)


def make_router(ctx: WebContext) -> APIRouter:
    router = APIRouter(dependencies=[Depends(ctx.access.require_operator)], include_in_schema=False)

    def detail(request: Request, edition_id: int, notice: str = "", status: int = 200) -> Response:
        with ctx.factory() as s:
            edition = assemble.get(s, str(edition_id))
            report = status_report(s, edition)
            stories = [story.headline for story in edition.stories]
            figures = edition_figures(s, edition) if edition.started_at else None
            audience = audience_counts(s).total if edition.status == EditionStatus.DRAFT else 0
            subject = edition.subject
        counts = report["deliveries"]
        total = sum(counts.values())
        done = total - sum(counts[k] for k in ("pending", "claimed", "sending"))
        live = report["status"] == EditionStatus.RUNNING
        return ctx.page(
            request,
            "edition.html",
            status,
            report=report,
            stories=stories,
            total=total,
            done=done,
            live=live,
            notice=notice,
            figures=figures,
            audience=audience,
            subject=subject,
        )

    @router.get("/editions")
    def listing(request: Request) -> HTMLResponse:
        with ctx.factory() as s:
            rows = assemble.list_editions(s)
            new = len(assemble.new_stories(s))
        return ctx.page(request, "editions.html", rows=rows, new=new)

    @router.post("/editions")
    async def build(request: Request) -> Response:
        await ctx.access.form(request)
        with transaction(ctx.factory) as s:
            edition = assemble.build(s)
            edition_id = edition.id if edition else None
        if edition_id is None:
            raise WebError(409, "no new stories: nothing to build")
        return RedirectResponse(f"/editions/{edition_id}", status_code=303)

    @router.get("/editions/{edition_id}")
    def show(request: Request, edition_id: int = EditionId) -> Response:
        return detail(request, edition_id)

    @router.post("/editions/{edition_id}/send")
    async def send(request: Request, edition_id: int = EditionId) -> Response:
        fields = await ctx.access.form(request)
        start_send(ctx, edition_id, force=fields.get("force") == "1")
        return RedirectResponse(f"/editions/{edition_id}", status_code=303)

    @router.post("/editions/{edition_id}/test")
    async def test(request: Request, edition_id: int = EditionId) -> Response:
        fields = await ctx.access.form(request)
        address = fields.get("email", "").strip()
        transport = open_transport(ctx.settings)
        message_id = manual.test_send(
            ctx.settings, ctx.factory, str(edition_id), address, transport
        )
        return detail(request, edition_id, f"Test message {message_id} sent to {address}.")

    @router.post("/editions/{edition_id}/{action}")
    async def change(request: Request, action: str, edition_id: int = EditionId) -> Response:
        await ctx.access.form(request)
        if action not in ("pause", "resume", "cancel"):
            raise WebError(404, f"no action {action!r}")
        apply_action(ctx, edition_id, action)
        return RedirectResponse(f"/editions/{edition_id}", status_code=303)

    return router


def apply_action(ctx: WebContext, edition_id: int, action: str) -> None:
    """Pause, resume (the workers carry on sending) or cancel an edition."""
    service.change_edition(ctx.factory, str(edition_id), action)
    if action == "resume":
        # It passed (or was forced past) the check; with the queue, its chunks are deferred again.
        open_for_workers(ctx.settings, ctx.factory, str(edition_id), force=True)

"""Operator pages for editions: the list, a detail page with live progress, and actions.

Every action is a CSRF-checked POST. Sending runs in a background thread
(``digest.delivery.service`` over SMTP) so the request returns at once; the
detail page refreshes itself (a meta refresh: no script) while it runs.
"""

from __future__ import annotations

import logging
import threading

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from digest.core.db import transaction
from digest.core.errors import EditionError
from digest.core.status import EditionStatus
from digest.delivery import manual, service
from digest.delivery.report import status_report
from digest.editions import assemble
from digest.transports.factory import open_transport
from digest.web.context import WebContext
from digest.web.errors import WebError
from digest.web.preview import EditionId

log = logging.getLogger(__name__)
SENDABLE = (EditionStatus.DRAFT, EditionStatus.SCHEDULED, EditionStatus.RUNNING)


def start_send(ctx: WebContext, edition_id: int, force: bool = False) -> None:
    """Check edition ``edition_id`` now, then send it in a background thread.

    Problems the operator can fix (wrong status, failed pre-send check) are
    raised here, before anything starts; the thread's own failure is kept in
    ``ctx.send_errors`` for the detail page (the ledger holds what was sent).
    """
    with ctx.factory() as s:
        edition = assemble.get(s, str(edition_id))
        if edition.status not in SENDABLE:
            raise EditionError(f"edition {edition_id} is {edition.status}, not sendable")
    if edition_id in ctx.sending:
        return  # already being sent by this process
    # Render, check and open the ledger here, so problems answer this request.
    _, messages, _ = service.open_send(ctx.settings, ctx.factory, str(edition_id), force)
    ctx.sending.add(edition_id)
    ctx.send_errors.pop(edition_id, None)

    def run() -> None:
        try:
            transport = open_transport(ctx.settings)
            service.send_opened(ctx.settings, ctx.factory, messages, transport)
        except Exception as exc:  # shown on the detail page; nothing else can report it
            log.exception("sending edition %s failed", edition_id)
            ctx.send_errors[edition_id] = str(exc) or type(exc).__name__
        finally:
            ctx.sending.discard(edition_id)

    threading.Thread(target=run, name=f"digest-send-{edition_id}", daemon=True).start()


def make_router(ctx: WebContext) -> APIRouter:
    router = APIRouter(dependencies=[Depends(ctx.access.require_operator)], include_in_schema=False)

    def detail(request: Request, edition_id: int, notice: str = "", status: int = 200) -> Response:
        with ctx.factory() as s:
            edition = assemble.get(s, str(edition_id))
            report = status_report(s, edition)
            stories = [story.headline for story in edition.stories]
        counts = report["deliveries"]
        total = sum(counts.values())
        done = total - sum(counts[k] for k in ("pending", "claimed", "sending"))
        live = report["status"] == EditionStatus.RUNNING or edition_id in ctx.sending
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
            send_error=ctx.send_errors.get(edition_id, ""),
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
    """Pause, resume (and carry on sending in the background) or cancel an edition."""
    service.change_edition(ctx.factory, str(edition_id), action)
    if action == "resume":
        start_send(ctx, edition_id, force=True)  # it passed (or was forced past) the check

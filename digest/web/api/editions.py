"""``/api/editions`` and ``/api/preview/next``: build, inspect, preview, send, pause, resume."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from digest.core.db import transaction
from digest.delivery.report import status_report
from digest.editions import assemble
from digest.mail.check import GMAIL_CLIP_BYTES
from digest.web.api.schemas import EditionOut, EditionProgress, PreviewOut, SendIn
from digest.web.context import WebContext
from digest.web.editions import apply_action, start_send
from digest.web.errors import WebError
from digest.web.preview import EditionId, SubscriberParam, build_preview


def make_router(ctx: WebContext) -> APIRouter:
    router = APIRouter(tags=["editions"])

    def progress(edition_id: int) -> EditionProgress:
        with ctx.factory() as s:
            report = status_report(s, assemble.get(s, str(edition_id)))
            return EditionProgress.model_validate(report)

    @router.get("/editions")
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

    @router.post("/editions", status_code=201)
    def build_edition() -> EditionProgress:
        """Build a draft edition from every new story (409 when there is none)."""
        with transaction(ctx.factory) as s:
            edition = assemble.build(s)
            edition_id = edition.id if edition else None
        if edition_id is None:
            raise WebError(409, "no new stories: nothing to build")
        return progress(edition_id)

    @router.get("/editions/{edition_id}")
    def edition_status(edition_id: int = EditionId) -> EditionProgress:
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

    @router.get("/editions/{edition_id}/preview")
    def preview_edition(
        edition_id: int = EditionId, subscriber: int | None = SubscriberParam
    ) -> PreviewOut:
        return preview_out(str(edition_id), subscriber)

    @router.get("/preview/next")
    def preview_next(subscriber: int | None = SubscriberParam) -> PreviewOut:
        """The next edition (from the new stories) as it would go out; nothing is created."""
        return preview_out("next", subscriber)

    @router.post("/editions/{edition_id}/send", status_code=202)
    def send_edition(body: SendIn | None = None, edition_id: int = EditionId) -> EditionProgress:
        """Check the edition and open it for the workers (202); poll the status for progress.

        Nothing is sent by the web app: a `digest worker` sends it. While none is
        alive the status says ``waiting_for_worker``.
        """
        start_send(ctx, edition_id, force=bool(body and body.force))
        return progress(edition_id)

    def action_route(action: str) -> Any:
        def act(edition_id: int = EditionId) -> EditionProgress:
            apply_action(ctx, edition_id, action)
            return progress(edition_id)

        return act

    for action in ("pause", "resume", "cancel"):
        router.add_api_route(
            f"/editions/{{edition_id}}/{action}",
            action_route(action),
            methods=["POST"],
            name=f"{action}_edition",
            summary=f"{action.capitalize()} an edition",
            response_model=EditionProgress,
        )

    return router

"""Operator pages that change a draft before it goes out, and the send confirmation.

``/editions/{id}/edit`` sets the subject and the Markdown intro, orders the
stories (a number per story) and takes stories out (they go back to the pool);
``/editions/{id}/delete`` deletes a draft. ``GET /editions/{id}/send`` is the
confirmation: how many subscribers a send mails (by cadence and by topic) and
what the pre-send check found, with the button that POSTs the send.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from digest.core.db import transaction
from digest.core.errors import DigestError, EditionError
from digest.core.status import EditionStatus
from digest.delivery.figures import audience_counts
from digest.editions import assemble, editor
from digest.mail.check import blocking, warnings
from digest.web.context import WebContext
from digest.web.preview import EditionId, build_preview

# A send can start from these; a running edition has started already (pause or cancel it).
STARTABLE = (EditionStatus.DRAFT, EditionStatus.SCHEDULED)


def story_order(fields: dict[str, str], present: list[int]) -> list[int]:
    """The story ids to keep, in the order the form's position numbers give (ties: as before)."""
    keyed = []
    for index, story_id in enumerate(present):
        if fields.get(f"remove-{story_id}") == "1":
            continue
        raw = fields.get(f"pos-{story_id}", "").strip()
        if raw and not (raw.isascii() and raw.isdigit() and len(raw) < 6):
            raise DigestError(f"position of story {story_id} is not a number: {raw[:20]!r}")
        keyed.append((int(raw) if raw else index + 1, index, story_id))
    return [story_id for _, _, story_id in sorted(keyed)]


def make_router(ctx: WebContext) -> APIRouter:
    router = APIRouter(dependencies=[Depends(ctx.access.require_operator)], include_in_schema=False)

    @router.get("/editions/{edition_id}/edit")
    def edit_form(request: Request, edition_id: int = EditionId) -> Response:
        with ctx.factory() as s:
            edition = editor.draft(s, edition_id)
            stories = [(story.id, story.headline) for story in edition.stories]
            subject, intro = edition.subject or "", edition.intro or ""
        return ctx.page(
            request,
            "edition_edit.html",
            edition_id=edition_id,
            stories=stories,
            subject=subject,
            intro=intro,
            max_subject=editor.MAX_SUBJECT,
            max_intro=editor.MAX_INTRO,
        )

    @router.post("/editions/{edition_id}/edit")
    async def edit(request: Request, edition_id: int = EditionId) -> Response:
        fields = await ctx.access.form(request)
        with transaction(ctx.factory) as s:
            present = [p.story_id for p in editor.draft(s, edition_id).placements]
            changes = editor.DraftChanges(
                subject=fields.get("subject", ""),
                intro=fields.get("intro", ""),
                order=story_order(fields, present),
            )
            editor.edit(s, edition_id, changes)
        return RedirectResponse(f"/editions/{edition_id}", status_code=303)

    @router.post("/editions/{edition_id}/delete")
    async def delete(request: Request, edition_id: int = EditionId) -> Response:
        await ctx.access.form(request)
        with transaction(ctx.factory) as s:
            editor.delete_draft(s, edition_id)
        return RedirectResponse("/editions", status_code=303)

    @router.get("/editions/{edition_id}/send")
    def confirm_send(request: Request, edition_id: int = EditionId) -> Response:
        with ctx.factory() as s:
            edition = assemble.get(s, str(edition_id))
            if edition.status not in STARTABLE:
                raise EditionError(
                    f"edition {edition_id} is {edition.status}: it cannot be sent", edition_id
                )
            audience = audience_counts(s)
        preview = build_preview(ctx, str(edition_id))
        return ctx.page(
            request,
            "edition_send.html",
            edition_id=edition_id,
            subject=preview.subject,
            audience=audience,
            problems=blocking(preview.problems),
            warnings=warnings(preview.problems),
        )

    return router

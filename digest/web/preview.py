"""Operator previews: the exact message recipients get, built by ``digest.mail``
(a started edition from the render stored at its start).

The page shows the HTML part in a sandboxed iframe (no scripts, an opaque
origin) loaded from a separate URL that carries a ``sandbox`` CSP of its own,
so story content can never run script in the operator's page, even when that
URL is opened directly. Toggles (width, dark mode, text tab) are CSS only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from digest.core.models import MAX_ID
from digest.delivery import service
from digest.editions import assemble
from digest.mail.check import GMAIL_CLIP_BYTES, check_edition
from digest.mail.message import SAMPLE_RECIPIENT, Recipient, parts_of
from digest.web.context import WebContext
from digest.web.errors import WebError
from subscribers.models import Subscriber
from subscribers.status import SubscriberStatus

EditionId = PathParam(ge=1, le=MAX_ID, description="edition id")
SubscriberParam = Query(None, ge=1, le=MAX_ID, description="render as this subscriber")
# The raw email HTML: shown only inside the sandboxed frame of the preview page.
EMAIL_CSP = (
    "default-src 'none'; img-src http: https: data:; style-src 'unsafe-inline'; "
    "sandbox allow-popups allow-popups-to-escape-sandbox; frame-ancestors 'self'; base-uri 'none'"
)
DARK_QUERY = re.compile(r"@media\s*\(\s*prefers-color-scheme\s*:\s*dark\s*\)")
# The email's "light dark" colour-scheme declarations (meta and CSS): light only.
LIGHT_ONLY = re.compile(r"(?<=color-scheme\" content=\")light dark|(?<=color-scheme: )light dark")


@dataclass(frozen=True)
class Preview:
    ref: str
    subject: str
    preheader: str
    sender: str
    recipient: Recipient
    html: str
    text: str
    eml: bytes
    problems: list[str]

    @property
    def html_bytes(self) -> int:
        return len(self.html.encode("utf-8"))


def recipient_for(ctx: WebContext, subscriber_id: int | None) -> Recipient:
    if subscriber_id is None:
        return SAMPLE_RECIPIENT
    with ctx.factory() as s:
        sub = s.get(Subscriber, subscriber_id)
        if sub is None or sub.erased_at is not None:
            raise WebError(404, f"no subscriber with id {subscriber_id}")
        return Recipient(sub.id, sub.email, sub.name, sub.token_version)


def build_preview(ctx: WebContext, ref: str, subscriber_id: int | None = None) -> Preview:
    """Edition ``ref`` (an id or ``next``) as one recipient gets it, through the sending path."""
    recipient = recipient_for(ctx, subscriber_id)
    # A started edition is shown from the render stored at its start, drafts live.
    prepared = service.prepare_ref(ctx.settings, ctx.factory, ref)
    messages = prepared.messages
    eml = messages.build(recipient)
    text, html = parts_of(eml)
    return Preview(
        ref=ref,
        subject=messages.rendered.subject,
        preheader=messages.rendered.preheader,
        sender=messages.sender.display_name or messages.sender.addr_spec,
        recipient=recipient,
        html=html,
        text=text,
        eml=eml,
        problems=check_edition(ctx.settings, prepared.view, prepared.edition_id, messages),
    )


def email_html(html: str, dark: bool = False) -> HTMLResponse:
    """The email's HTML under a sandbox CSP; ``dark`` applies its dark-mode CSS unconditionally,
    otherwise it never applies (the light view stays light under a dark operating system)."""
    if dark:
        html = DARK_QUERY.sub("@media all", html)
    else:
        html = LIGHT_ONLY.sub("light", DARK_QUERY.sub("@media not all", html))
    return HTMLResponse(
        html, headers={"Content-Security-Policy": EMAIL_CSP, "Cache-Control": "no-store"}
    )


def make_router(ctx: WebContext) -> APIRouter:
    router = APIRouter(dependencies=[Depends(ctx.access.require_operator)], include_in_schema=False)

    def page(request: Request, ref: str, base: str, subscriber: int | None) -> HTMLResponse:
        preview = build_preview(ctx, ref, subscriber)
        with ctx.factory() as s:
            people = s.execute(
                select(Subscriber.id, Subscriber.email, Subscriber.name)
                .where(Subscriber.status == SubscriberStatus.ACTIVE)
                .order_by(Subscriber.id)
                .limit(200)
            ).all()
        query = f"?subscriber={subscriber}" if subscriber else ""
        return ctx.page(
            request,
            "preview.html",
            preview=preview,
            title="Next edition" if ref == "next" else f"Edition {ref}",
            base=base,
            query=query,
            dark_query=(query + "&" if query else "?") + "scheme=dark",
            subscribers=people,
            selected=subscriber,
            size_kb=preview.html_bytes / 1024,
            clip_kb=GMAIL_CLIP_BYTES / 1024,
            clipped=preview.html_bytes > GMAIL_CLIP_BYTES,
            edition_id=None if ref == "next" else int(ref),
        )

    def eml(preview: Preview) -> Response:
        name = "next" if preview.ref == "next" else f"edition-{preview.ref}"
        return Response(
            preview.eml,
            media_type="message/rfc822",
            headers={"Content-Disposition": f'attachment; filename="{name}.eml"'},
        )

    @router.get("/preview/next")
    def preview_next(request: Request, subscriber: int | None = SubscriberParam) -> Response:
        with ctx.factory() as s:
            waiting = assemble.new_stories(s)
        if not waiting:  # an empty state, not an error: the menu links here at all times
            return ctx.page(request, "preview_empty.html")
        return page(request, "next", "/preview/next", subscriber)

    @router.get("/preview/next.html")
    def preview_next_html(
        subscriber: int | None = SubscriberParam, scheme: str = "light"
    ) -> Response:
        return email_html(build_preview(ctx, "next", subscriber).html, scheme == "dark")

    @router.get("/preview/next.eml")
    def preview_next_eml(subscriber: int | None = SubscriberParam) -> Response:
        return eml(build_preview(ctx, "next", subscriber))

    @router.get("/editions/{edition_id}/preview")
    def preview_edition(
        request: Request, edition_id: int = EditionId, subscriber: int | None = SubscriberParam
    ) -> Response:
        return page(request, str(edition_id), f"/editions/{edition_id}/preview", subscriber)

    @router.get("/editions/{edition_id}/preview.html")
    def preview_edition_html(
        edition_id: int = EditionId,
        subscriber: int | None = SubscriberParam,
        scheme: str = "light",
    ) -> Response:
        preview = build_preview(ctx, str(edition_id), subscriber)
        return email_html(preview.html, scheme == "dark")

    @router.get("/editions/{edition_id}/preview.eml")
    def preview_edition_eml(
        edition_id: int = EditionId, subscriber: int | None = SubscriberParam
    ) -> Response:
        return eml(build_preview(ctx, str(edition_id), subscriber))

    return router

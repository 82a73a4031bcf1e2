"""The public archive: sent editions on the web, and their Atom feed.

``/archive/{id}`` is where every email's "View in browser" link points
(``digest.render`` builds it from ``DIGEST_BASE_URL``). Only editions whose
sending started (running, paused, finished) are public; drafts and cancelled
editions answer 404. The page is the email's own HTML, filled in for no one
in particular, under a sandbox CSP: story content never runs script; its
subscriber footer is replaced by one for the web (subscribe, other editions).
Search engines may index the archive unless ``DIGEST_ARCHIVE_NOINDEX`` is true
(then ``X-Robots-Tag: noindex`` and a ``noindex`` robots meta).
"""

from __future__ import annotations

import re
from datetime import datetime
from html import escape
from xml.etree import ElementTree as ET

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.core.models import Edition
from digest.core.settings import Settings
from digest.core.status import EditionStatus
from digest.editions import assemble
from digest.render.edition import render_with, stored_render, subject_for
from digest.web.context import WebContext
from digest.web.errors import WebError
from digest.web.preview import EditionId

PUBLIC = (EditionStatus.RUNNING, EditionStatus.PAUSED, EditionStatus.FINISHED)
ATOM = "http://www.w3.org/2005/Atom"
ARCHIVE_CSP = (
    "default-src 'none'; img-src http: https: data:; style-src 'unsafe-inline'; "
    "sandbox allow-popups allow-popups-to-escape-sandbox; frame-ancestors 'none'; base-uri 'none'"
)
FEED_SIZE = 50
SUBSCRIBER_FOOTER = re.compile(r'<div class="subscriber-footer">.*?</div>', re.DOTALL)
READER_TOPICS = re.compile(r'<p class="reader-topics".*?</p>', re.DOTALL)
WEB_FOOTER = (
    '<div class="web-footer">'
    '<p style="margin:0 0 6px;">You are reading the web version of {newsletter}.</p>'
    '<p style="margin:0 0 6px;"><a href="{subscribe}" style="color:#52606d;">Subscribe</a>'
    ' · <a href="{archive}" style="color:#52606d;">Other editions</a></p></div>'
)


def public_editions(session: Session, limit: int | None = None) -> list[Edition]:
    """Editions subscribers have been sent, newest first."""
    query = select(Edition).where(Edition.status.in_(PUBLIC)).order_by(Edition.id.desc())
    return list(session.scalars(query.limit(limit) if limit else query))


def published_at(edition: Edition) -> datetime:
    return edition.started_at or edition.created_at


def web_html(ctx: WebContext, edition_id: int) -> str:
    """The web version: the email's HTML with links anyone may follow instead of personal ones.

    A plain read of the render stored when the edition started (templates edited
    since change nothing); only editions started before that was stored render live.
    """
    with ctx.factory() as s:
        edition = s.get(Edition, edition_id)
        if edition is None or edition.status not in PUBLIC:
            raise WebError(404, f"no published edition {edition_id}")
        rendered = stored_render(edition)
        if rendered is None:
            rendered = render_with(ctx.settings, assemble.view(s, str(edition_id)))
    base = ctx.settings.base_url
    subscribe = f"{base}/subscribe"
    html, _ = rendered.personalize(
        {
            "unsubscribe_url": subscribe,
            "preferences_url": subscribe,
            "name": "",
            "topics": "everything",
        }
    )
    # The subscriber footer ("you subscribed", Unsubscribe, Preferences) is for readers of
    # the email; the web version says what it is and links to subscribe and other editions.
    # A render from a template without the marked footer keeps its footer, links made public.
    footer = WEB_FOOTER.format(
        newsletter=escape(ctx.settings.newsletter_name),
        subscribe=escape(subscribe, quote=True),
        archive=escape(f"{base}/archive", quote=True),
    )
    # Nor is the reader's "Your topics … Change them" line: the web version has no reader.
    html = READER_TOPICS.sub("", html, count=1)
    return SUBSCRIBER_FOOTER.sub(lambda _: footer, html, count=1)


def robots_headers(settings: Settings) -> dict[str, str]:
    """``X-Robots-Tag: noindex`` when DIGEST_ARCHIVE_NOINDEX asks for it; else nothing."""
    return {"X-Robots-Tag": "noindex"} if settings.archive_noindex else {}


def atom_feed(ctx: WebContext, items: list[tuple[Edition, str, str]]) -> bytes:
    base = ctx.settings.base_url
    ET.register_namespace("", ATOM)
    feed = ET.Element(f"{{{ATOM}}}feed")

    def add(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        element = ET.SubElement(parent, f"{{{ATOM}}}{tag}", attrs)
        element.text = text
        return element

    add(feed, "id", f"{base}/archive")
    add(feed, "title", ctx.settings.newsletter_name)
    add(feed, "link", href=f"{base}/archive/feed.xml", rel="self")
    add(feed, "link", href=f"{base}/archive", rel="alternate")
    newest = max((published_at(e) for e, _, _ in items), default=None)
    add(feed, "updated", (newest or datetime(2000, 1, 1)).isoformat())
    author = add(feed, "author")
    add(author, "name", ctx.settings.newsletter_name)
    for edition, title, summary in items:
        entry = add(feed, "entry")
        add(entry, "id", f"{base}/archive/{edition.id}")
        add(entry, "title", title)
        add(entry, "link", href=f"{base}/archive/{edition.id}", rel="alternate")
        add(entry, "updated", (edition.finished_at or published_at(edition)).isoformat())
        add(entry, "published", published_at(edition).isoformat())
        add(entry, "summary", summary)
    return ET.tostring(feed, encoding="utf-8", xml_declaration=True)


def make_router(ctx: WebContext) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    def listing(limit: int | None) -> list[tuple[Edition, str, str]]:
        with ctx.factory() as s:
            items = []
            for edition in public_editions(s, limit):
                if edition.rendered_subject is not None:  # stored at start
                    title, summary = edition.rendered_subject, edition.rendered_preheader or ""
                else:
                    view = assemble.view_of(assemble.get(s, str(edition.id)))
                    title = subject_for(ctx.settings.newsletter_name, view)
                    summary = " · ".join(story.headline for story in view.stories[:3])
                items.append((edition, title, summary))
            return items

    @router.get("/archive")
    def archive(request: Request) -> HTMLResponse:
        response = ctx.page(
            request,
            "archive.html",
            items=listing(None),
            robots="noindex" if ctx.settings.archive_noindex else "index, follow",
        )
        response.headers.update(robots_headers(ctx.settings))
        return response

    @router.get("/archive/feed.xml")
    def feed() -> Response:
        return Response(
            atom_feed(ctx, listing(FEED_SIZE)),
            media_type="application/atom+xml",
            headers=robots_headers(ctx.settings),
        )

    @router.get("/archive/{edition_id}")
    def archived(edition_id: int = EditionId) -> HTMLResponse:
        headers = {"Content-Security-Policy": ARCHIVE_CSP, **robots_headers(ctx.settings)}
        return HTMLResponse(web_html(ctx, edition_id), headers=headers)

    return router

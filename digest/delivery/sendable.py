"""What a send and a dry run share before the first message: which editions a send may
take, and the messages of a started one (its variants rendered once, at the start)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session, sessionmaker

from digest.core.errors import EditionError
from digest.core.models import Edition, Story
from digest.core.settings import Settings
from digest.core.status import EditionStatus
from digest.delivery.messages import EditionMessages
from digest.delivery.variants import RenderStories
from digest.editions import assemble
from digest.mail.message import from_render, prepare
from digest.render.edition import (
    Rendered,
    make_environment,
    render_with,
    stored_render,
)
from subscribers import service as subscribers


def sendable(session: Session, ref: str) -> Edition:
    """Edition ``ref`` if a send may go on with it; the refusals a real send and a dry run share."""
    edition = assemble.get(session, ref)
    if edition.status == EditionStatus.CANCELLED:
        raise EditionError(f"edition {edition.id} is cancelled", edition.id)
    if edition.status == EditionStatus.PAUSED:
        raise EditionError(
            f"edition {edition.id} is paused: `digest resume {edition.id}` first", edition.id
        )
    if not edition.placements:
        raise EditionError(f"edition {edition.id} has no stories", edition.id)
    return edition


def refuse_without_subscribers(session: Session, edition_id: int | None) -> None:
    if subscribers.count_active(session):
        return
    if edition_id is None:
        raise EditionError("next edition: no active subscribers, nothing would be sent")
    raise EditionError(
        f"edition {edition_id}: no active subscribers, nothing sent; the edition stays a draft",
        edition_id,
    )


def started_messages(
    settings: Settings, edition: Edition, factory: sessionmaker[Session] | None = None
) -> EditionMessages:
    """A started edition's messages, from the renders stored when it started (each
    variant's is loaded from ``factory`` when a row of it is sent).

    Editions started before that render was stored (migration 0010) render live.
    """
    stored = stored_render(edition)
    if stored is not None:
        whole = from_render(settings, stored, edition.id)
    else:
        whole = prepare(settings, assemble.view_of(edition), edition.id)
    return EditionMessages(whole, settings, factory)


def variant_renderer(settings: Settings, edition: Edition) -> RenderStories:
    """How a start renders a variant: the edition's digest with only those stories
    (the variants share one template environment: templates are parsed once)."""
    env = make_environment(settings.templates_dir)

    def render(stories: Sequence[Story]) -> Rendered:
        return render_with(settings, assemble.view_of(edition, stories), env=env)

    return render

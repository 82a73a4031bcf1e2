"""An edition's messages for sending: one message factory per variant, compiled once each.

A sender holds one ``EditionMessages`` per run (a ``digest send``, a worker
poll, a queue chunk). A row's variant is looked up the first time a row of it
comes along, and its ``MessageFactory`` (the MIME byte template compiled from
the variant's stored render, no Jinja or MJML) is kept for every later row of
that variant; per recipient only the splice remains.
"""

from __future__ import annotations

import threading

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from digest.core.models import Edition, EditionVariant, Story
from digest.core.settings import Settings
from digest.delivery.variants import variant_story_ids
from digest.mail.message import MessageFactory, Recipient, from_render, prepare
from digest.render.edition import EditionView, stored_render, story_views


class EditionMessages:
    """Messages of one edition: the whole edition's factory, and each variant's on demand.

    Without ``settings`` and ``sessions`` every row gets ``whole`` (one message for all).
    """

    def __init__(
        self,
        whole: MessageFactory,
        settings: Settings | None = None,
        sessions: sessionmaker[Session] | None = None,
    ) -> None:
        self.whole = whole
        self.edition_id = whole.edition_id
        self.rendered = whole.rendered
        self.sender = whole.sender
        self._settings = settings
        self._sessions = sessions
        self._by_variant: dict[int, MessageFactory] = {}
        self._lock = threading.Lock()

    def for_variant(self, variant_id: int | None) -> MessageFactory:
        """The factory of variant ``variant_id`` (None: a row from before variants)."""
        if variant_id is None or self._sessions is None or self._settings is None:
            return self.whole
        with self._lock:
            found = self._by_variant.get(variant_id)
            if found is None:
                found = self._by_variant[variant_id] = self._load(variant_id)
            return found

    def envelope_sender(self, subscriber_id: int) -> str:
        """MAIL FROM for this subscriber's message (the same for every variant)."""
        return self.whole.envelope_sender(subscriber_id)

    def build(self, recipient: Recipient, variant_id: int | None = None) -> bytes:
        return self.for_variant(variant_id).build(recipient)

    def _load(self, variant_id: int) -> MessageFactory:
        assert self._sessions is not None and self._settings is not None
        with self._sessions() as s:
            variant = s.get(EditionVariant, variant_id)
            edition = s.get(Edition, self.edition_id)
            if variant is None or edition is None or variant.edition_id != edition.id:
                return self.whole
            stored = stored_render(variant)
            if stored is not None:
                return from_render(self._settings, stored, self.edition_id)
            ids = variant_story_ids(s, variant_id)
            if ids == [p.story_id for p in edition.placements]:
                return self.whole
            # Stored without a render (a start given no renderer): render it once, here.
            by_id = {st.id: st for st in s.scalars(select(Story).where(Story.id.in_(ids)))}
            view = EditionView(
                self.edition_id, edition.created_at, story_views([by_id[i] for i in ids])
            )
        return prepare(self._settings, view, self.edition_id)

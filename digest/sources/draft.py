"""A parsed story before it is stored, and its content hash."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class StoryDraft:
    headline: str
    summary: str
    bullets: tuple[str, ...]
    source: str
    url: str | None = None
    published_at: datetime | None = field(default=None)
    body: str | None = None  # sanitized HTML
    source_guid: str | None = None
    tags: tuple[str, ...] = ()
    image_url: str | None = None
    image_alt: str | None = None
    priority: int = 0

    @property
    def content_hash(self) -> str:
        """Same words, same hash: whitespace runs and case do not make a new story."""
        parts = [self.headline, self.summary, *self.bullets]
        if self.body:
            parts.append(self.body)
        norm = "\n".join(" ".join(p.split()).casefold() for p in parts)
        return hashlib.sha256(norm.encode("utf-8")).hexdigest()

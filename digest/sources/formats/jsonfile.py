"""JSON stories: one story object, or a list of them (schema in the README).

A list file is all or nothing: one bad item rejects the file, naming the item.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from digest.core.errors import SourceError
from digest.sources.draft import StoryDraft
from digest.sources.formats import fields
from digest.sources.formats.seedtext import decode

REQUIRED = ("headline", "summary")
KEYS = {
    "headline",
    "summary",
    "bullets",
    "body",
    "url",
    "guid",
    "tags",
    "image_url",
    "image_alt",
    "published",
    "priority",
}
MAX_ITEMS = 1_000


def parse(path: Path, data: bytes) -> list[StoryDraft]:
    """Parse a JSON story file strictly; errors name the file, line and item."""
    text = decode(path, data)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SourceError(path, f"not valid JSON: {exc.msg}", exc.lineno) from None
    except RecursionError:
        raise SourceError(path, "not valid JSON: nested too deeply") from None
    if isinstance(doc, dict):
        return [_story(path, doc, None)]
    if isinstance(doc, list):
        if not doc:
            raise SourceError(path, "empty list: no stories")
        if len(doc) > MAX_ITEMS:
            raise SourceError(path, f"more than {MAX_ITEMS} stories in one file")
        return [_story(path, item, i) for i, item in enumerate(doc, start=1)]
    raise SourceError(
        path, f"expected a story object or a list of them, found {fields.type_name(doc)}"
    )


def _story(path: Path, item: Any, index: int | None) -> StoryDraft:
    where = "" if index is None else f"item {index}: "
    if not isinstance(item, dict):
        raise SourceError(path, f"{where}expected a story object, found {fields.type_name(item)}")
    unknown = sorted(k for k in item if k not in KEYS)
    if unknown:
        raise SourceError(path, f"{where}unknown key {unknown[0]!r}")
    for key in REQUIRED:
        if key not in item:
            raise SourceError(path, f"{where}missing {key!r}")

    def check(key: str, fn: Callable[[Any], Any]) -> Any:
        try:
            return fn(item.get(key))
        except ValueError as exc:
            raise SourceError(path, f"{where}{exc}") from None

    body = check("body", lambda v: None if v is None else fields.body_text(v))
    return StoryDraft(
        headline=check("headline", fields.headline),
        summary=check("summary", lambda v: fields.line(v, "summary")),
        bullets=check("bullets", fields.bullets),
        source=str(path) if index is None else f"{path}#{index}",
        url=check("url", fields.optional_url),
        published_at=check("published", fields.published),
        body=fields.sanitize_html(body) or None if body else None,
        source_guid=check("guid", lambda v: None if v is None else fields.line(v, "guid", 1000)),
        tags=check("tags", fields.tags),
        image_url=check("image_url", lambda v: fields.optional_url(v, "image_url")),
        image_alt=check(
            "image_alt", lambda v: None if v is None else fields.line(v, "image_alt", 500)
        ),
        priority=check("priority", fields.priority),
    )

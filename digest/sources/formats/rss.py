"""RSS/Atom documents into stories (feedparser); feed HTML is sanitized, never trusted.

Pure: bytes in, ``FeedItem``s and per-item problems out. Fetching is in
``digest.fetch``, storing in ``digest.feeds``.
"""

from __future__ import annotations

import calendar
import hashlib
import html
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

import feedparser
import nh3

from digest.core.errors import SourceError
from digest.sources.draft import StoryDraft
from digest.sources.formats import fields

MAX_SUMMARY = 400
_HTML_START = re.compile(rb"^\s*(<!doctype\s+html|<html|<head|<body)", re.IGNORECASE)


@dataclass(frozen=True)
class FeedItem:
    key: str  # sha256 of the item's GUID (or link): what "seen" remembers
    draft: StoryDraft


@dataclass
class ParsedFeed:
    title: str
    items: list[FeedItem] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # "item 3: no title", ...


def parse(
    url: str, content: bytes, content_type: str = "", name: str = "", tags: tuple[str, ...] = ()
) -> ParsedFeed:
    """Items of a feed document at ``url``; ``SourceError`` when it is no feed at all."""
    if not content.strip():
        raise SourceError(url, "empty response, not a feed")
    if "html" in content_type.lower() or _HTML_START.match(content[:512]):
        raise SourceError(url, "not a feed: the server sent an HTML page, not RSS/Atom XML")
    doc: Any = feedparser.parse(
        content,
        response_headers={"content-location": url, "content-type": content_type or "text/xml"},
        sanitize_html=True,
        resolve_relative_uris=True,
    )
    if not doc.get("version") and not doc.entries:
        problem = str(doc.get("bozo_exception") or "no RSS or Atom elements")
        raise SourceError(url, f"not a feed: {problem.splitlines()[0]}")
    title = _text(doc.feed.get("title", "")) or name or url
    parsed = ParsedFeed(title=title)
    for index, entry in enumerate(doc.entries, start=1):
        try:
            parsed.items.append(_item(url, entry, name or title, tags))
        except ValueError as exc:
            parsed.problems.append(f"item {index}: {exc}")
    return parsed


def _item(feed_url: str, entry: Any, feed_name: str, feed_tags: tuple[str, ...]) -> FeedItem:
    headline = _text(entry.get("title", ""))
    if not headline:
        raise ValueError("no title")
    raw_link = (entry.get("link") or "").strip()
    if not raw_link:
        raise ValueError(f"no link ({fields.clip(headline)!r})")
    link = fields.url(urljoin(feed_url, raw_link), "link")
    headline = fields.headline(_clip(headline, fields.MAX_HEADLINE))
    body_html = _body_html(entry)
    summary = _clip(_text(body_html), MAX_SUMMARY) if body_html else ""
    guid = (entry.get("id") or "").strip() or link
    terms = [t.get("term") for t in entry.get("tags", []) if t.get("term")]
    tags = fields.tags([*feed_tags, *(_clip(_text(t), fields.MAX_TAG) for t in terms)][:20])
    image_url = _image(entry, feed_url)
    draft = StoryDraft(
        headline=headline,
        summary=fields.line(summary or f"From {feed_name}", "summary"),
        bullets=(),
        source=feed_url,
        url=link,
        published_at=_published(entry),
        body=fields.sanitize_html(body_html) or None if body_html else None,
        source_guid=_clip(guid, 1000),
        tags=tags,
        image_url=image_url,
        image_alt=headline if image_url else None,
    )
    return FeedItem(hashlib.sha256(guid.encode("utf-8")).hexdigest(), draft)


def _body_html(entry: Any) -> str:
    for content in entry.get("content", []):
        if content.get("value"):
            return str(content["value"])
    return str(entry.get("summary", "") or "")


def _text(value: str) -> str:
    """Plain text of a (possibly HTML) string: tags dropped, entities decoded, one line."""
    stripped = nh3.clean(str(value), tags=set())
    return " ".join(html.unescape(stripped).split())


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1].rstrip() + "…"


def _published(entry: Any) -> datetime | None:
    stamp = entry.get("published_parsed") or entry.get("updated_parsed")
    if not stamp:
        return None
    return datetime.fromtimestamp(calendar.timegm(stamp), UTC)


def _image(entry: Any, feed_url: str) -> str | None:
    candidates = [m.get("url") for m in entry.get("media_thumbnail", [])]
    candidates += [m.get("url") for m in entry.get("media_content", [])]
    candidates += [
        e.get("href") for e in entry.get("enclosures", []) if e.get("type", "").startswith("image/")
    ]
    for candidate in candidates:
        if candidate:
            try:
                return fields.url(urljoin(feed_url, candidate), "image")
            except ValueError:
                continue
    return None

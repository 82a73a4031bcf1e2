"""Followed feeds: add, list, remove, and fetch new items into stories.

Feeds are fetched concurrently (network and file reads in a small thread
pool, so one slow feed does not hold up the others); each result is stored by
the calling thread in its own transaction. A failure is recorded on the feed
(``last_error``; ``last_success_at`` stays) and never stops the other feeds.
A newly added feed is *primed* on its first successful fetch: its existing
items are marked seen, except the newest ``backfill``.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from digest.core.db import transaction, utcnow
from digest.core.errors import DigestError, NotFound, SourceError
from digest.core.models import Feed, SeenFeedItem, Story
from digest.sources.fetch import NOT_A_FEED_URL, Fetched, FetchLimits, check_admissible, fetch
from digest.sources.formats import fields
from digest.sources.formats import rss as feed_format
from digest.sources.ingest import Outcome, store_draft

OLDEST = datetime.min.replace(tzinfo=UTC)
FETCH_THREADS = 8  # feeds fetched at once; each waits on the network, not the CPU


@dataclass
class FetchResult:
    feed_id: int
    url: str
    added: int = 0
    updated: int = 0
    skipped: int = 0  # marked seen when the feed was added
    not_modified: bool = False
    error: str | None = None
    problems: list[str] = field(default_factory=list)


class FeedNotFound(NotFound):
    """No followed feed has this id or URL."""


def describe(result: FetchResult) -> str:
    """One line on a fetch: how many stories it brought, or why it failed."""
    where = f"feed {result.feed_id} {result.url}: "
    if result.error:
        return where + f"failed: {result.error}"
    if result.not_modified:
        return where + "not modified"
    parts = [f"{result.added} new"]
    if result.updated:
        parts.append(f"{result.updated} updated")
    if result.skipped:
        parts.append(f"{result.skipped} existing items marked seen")
    if result.problems:
        parts.append(f"{len(result.problems)} bad items skipped")
    return where + ", ".join(parts)


def check_url(url: str) -> str:
    url = url.strip()
    scheme = urlsplit(url).scheme.lower()
    if scheme not in {"http", "https", "file"} or (scheme != "file" and not urlsplit(url).netloc):
        raise SourceError(url, NOT_A_FEED_URL)
    return url


def add(
    session: Session,
    url: str,
    name: str = "",
    tags: Sequence[str] = (),
    backfill: int = 0,
    *,
    limits: FetchLimits,
) -> Feed:
    """Follow a feed; ``DigestError`` if it is followed already or no fetch could ever reach it."""
    url = check_url(url)
    check_admissible(url, limits)
    if session.scalar(select(Feed.id).where(Feed.url == url)) is not None:
        raise DigestError(f"feed {url} is already followed (see `digest feeds list`)")
    if backfill < 0:
        raise DigestError("--backfill must be 0 or more")
    try:
        clean_tags = list(fields.tags(list(tags)))
        clean_name = fields.line(name, "name", 200) if name.strip() else ""
    except ValueError as exc:
        raise DigestError(str(exc)) from None
    feed = Feed(url=url, name=clean_name, tags=clean_tags, backfill=backfill, created_at=utcnow())
    session.add(feed)
    session.flush()
    return feed


def list_feeds(session: Session) -> Sequence[Feed]:
    """Every followed feed, oldest first."""
    return session.scalars(select(Feed).order_by(Feed.id)).all()


def find(session: Session, ref: str) -> Feed:
    """A feed by id or URL."""
    feed = (
        session.get(Feed, int(ref))
        if ref.isdigit()
        else session.scalar(select(Feed).where(Feed.url == ref.strip()))
    )
    if feed is None:
        raise FeedNotFound(f"no feed {ref!r} (see `digest feeds list`)")
    return feed


def remove(session: Session, ref: str) -> Feed:
    """Stop following a feed; its stories stay."""
    feed = find(session, ref)
    session.query(SeenFeedItem).filter(SeenFeedItem.feed_id == feed.id).delete()
    session.delete(feed)
    session.flush()
    return feed


def fetch_one(factory: sessionmaker[Session], feed_id: int, limits: FetchLimits) -> FetchResult:
    """Fetch one feed and store its new items; a failure is recorded, not raised."""
    url, etag, modified = _conditions(factory, feed_id)
    return _store(factory, feed_id, url, _attempt(url, limits, etag, modified))


def fetch_all(
    factory: sessionmaker[Session], limits: FetchLimits, ref: str | None = None
) -> list[FetchResult]:
    """Fetch every feed (or the one ``ref`` names), concurrently; results in feed order."""
    with factory() as s:
        ids = [find(s, ref).id] if ref else list(s.scalars(select(Feed.id).order_by(Feed.id)))
    if not ids:
        return []
    results: list[FetchResult] = []
    with ThreadPoolExecutor(min(FETCH_THREADS, len(ids)), thread_name_prefix="feed") as pool:
        pending: dict[Future[Fetched | SourceError], tuple[int, str]] = {}
        for feed_id in ids:
            url, etag, modified = _conditions(factory, feed_id)
            pending[pool.submit(_attempt, url, limits, etag, modified)] = (feed_id, url)
        for done in as_completed(pending):
            feed_id, url = pending[done]
            results.append(_store(factory, feed_id, url, done.result()))
    return sorted(results, key=lambda r: r.feed_id)


def _conditions(factory: sessionmaker[Session], feed_id: int) -> tuple[str, str | None, str | None]:
    with factory() as s:
        feed = s.get(Feed, feed_id)
        if feed is None:
            raise DigestError(f"no feed {feed_id}")
        return feed.url, feed.etag, feed.last_modified


def _attempt(
    url: str, limits: FetchLimits, etag: str | None, modified: str | None
) -> Fetched | SourceError:
    """The fetch, or the reason it failed (returned: it is stored on the feed, not raised)."""
    try:
        return fetch(url, limits, etag, modified)
    except SourceError as exc:
        return exc


def _store(
    factory: sessionmaker[Session], feed_id: int, url: str, got: Fetched | SourceError
) -> FetchResult:
    result = FetchResult(feed_id, url)
    if isinstance(got, SourceError):
        return _failed(factory, result, got)
    try:
        with transaction(factory) as s:
            feed = s.get(Feed, feed_id)
            if feed is None:  # removed while it was being fetched
                return result
            feed.last_fetched_at = feed.last_success_at = utcnow()
            if got.content is None:
                result.not_modified = True
            else:
                parsed = feed_format.parse(
                    got.url, got.content, got.content_type, feed.name, tuple(feed.tags or [])
                )
                result.problems = parsed.problems
                _store_items(s, feed, parsed.items, result)
                feed.etag, feed.last_modified = got.etag, got.last_modified
            feed.last_error = _problem_summary(result.problems)
    except SourceError as exc:  # not a feed
        return _failed(factory, result, exc)
    return result


def _failed(factory: sessionmaker[Session], result: FetchResult, exc: SourceError) -> FetchResult:
    result.error = str(exc)
    with transaction(factory) as s:
        feed = s.get(Feed, result.feed_id)
        if feed is not None:
            feed.last_fetched_at = utcnow()
            feed.last_error = exc.problem
    return result


def _store_items(
    session: Session, feed: Feed, items: list[feed_format.FeedItem], result: FetchResult
) -> None:
    seen = set(
        session.scalars(select(SeenFeedItem.item_key).where(SeenFeedItem.feed_id == feed.id))
    )
    if feed.primed_at is None:
        newest = sorted(items, key=lambda i: i.draft.published_at or OLDEST, reverse=True)
        keep = {i.key for i in newest[: feed.backfill]}
        for item in items:
            if item.key not in keep and item.key not in seen:
                session.add(SeenFeedItem(feed_id=feed.id, item_key=item.key, seen_at=utcnow()))
                seen.add(item.key)
                result.skipped += 1
        feed.primed_at = utcnow()
        items = [i for i in items if i.key in keep]
    for item in items:
        if item.key in seen and not _has_story(session, item):
            continue  # skipped when the feed was added, or a duplicate of another source
        outcome, _ = store_draft(session, item.draft)
        if outcome is Outcome.ADDED:
            result.added += 1
        elif outcome is Outcome.UPDATED:
            result.updated += 1
        if item.key not in seen:
            session.add(SeenFeedItem(feed_id=feed.id, item_key=item.key, seen_at=utcnow()))
            seen.add(item.key)
    session.flush()


def _has_story(session: Session, item: feed_format.FeedItem) -> bool:
    guid = item.draft.source_guid
    return session.scalar(select(Story.id).where(Story.source_guid == guid)) is not None


def _problem_summary(problems: list[str]) -> str | None:
    if not problems:
        return None
    shown = "; ".join(problems[:5])
    more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
    return f"{len(problems)} item(s) skipped: {shown}{more}"

"""Commands about feeds: follow, list, stop following, fetch."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from digest.cli.app import App, emit_json, pass_app
from digest.core.errors import DigestError

if TYPE_CHECKING:
    from digest.sources.feeds import FetchResult


@click.group()
def feeds() -> None:
    """Follow RSS/Atom feeds and fetch their new items as stories."""


def _describe(result: FetchResult) -> str:
    from digest.sources.feeds import describe

    return describe(result)


@feeds.command("add")
@click.argument("url")
@click.option("--name", default="", help="A name to show instead of the feed's title.")
@click.option("--tags", default="", help="Comma-separated tags given to every story.")
@click.option(
    "--backfill",
    type=int,
    default=0,
    show_default=True,
    help="Take the newest N existing items as stories (the rest are marked seen).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the first fetch's result as JSON.")
@pass_app
def feeds_add(app: App, url: str, name: str, tags: str, backfill: int, as_json: bool) -> None:
    """Follow the feed at URL (http://, https:// or file://) and fetch it once.

    Items already in the feed are marked seen, so a new feed does not flood the
    next digest; --backfill N takes the newest N of them as stories. A host on a
    loopback, private or link-local address is refused unless
    DIGEST_FEED_ALLOW_PRIVATE=true; a file:// URL must name a regular file.
    """
    from dataclasses import asdict

    from digest.core.db import transaction
    from digest.sources import feeds as feed_store
    from digest.sources.fetch import FetchLimits

    limits = FetchLimits.from_settings(app.settings, files=True)
    tag_list = [t for t in tags.split(",") if t.strip()]
    with transaction(app.factory) as s:
        feed_id = feed_store.add(s, url, name, tag_list, backfill, limits=limits).id
    if not as_json:
        click.echo(f"following feed {feed_id}: {url}")
    result = feed_store.fetch_one(app.factory, feed_id, limits)
    if as_json:
        emit_json({"feed_id": feed_id, "url": url} | asdict(result))
        return
    click.echo(_describe(result), err=bool(result.error))
    if result.error:
        click.echo("the feed stays followed; `digest feeds fetch` tries again", err=True)


@feeds.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def feeds_list(app: App, as_json: bool) -> None:
    """List followed feeds with their last success and last error."""
    from digest.sources.feeds import list_feeds

    with app.factory() as s:
        rows = [f.as_dict() for f in list_feeds(s)]
    if as_json:
        emit_json(rows)
        return
    if not rows:
        click.echo("no feeds followed")
    for r in rows:
        ok = r["last_success_at"] or "never"
        line = f"{r['id']:>5}  {r['url']}  last success: {ok}"
        if r["name"]:
            line += f"  ({r['name']})"
        click.echo(line)
        if r["last_error"]:
            click.echo(f"       last error: {r['last_error']}")


@feeds.command("remove")
@click.argument("ref")
@pass_app
def feeds_remove(app: App, ref: str) -> None:
    """Stop following a feed (REF: its id or URL); its stories stay."""
    from digest.core.db import transaction
    from digest.sources import feeds as feed_store

    with transaction(app.factory) as s:
        feed = feed_store.remove(s, ref)
        feed_id, url = feed.id, feed.url
    click.echo(f"removed feed {feed_id}: {url}")


@feeds.command("fetch")
@click.argument("ref", required=False)
@pass_app
def feeds_fetch(app: App, ref: str | None) -> None:
    """Fetch every feed (or the one REF names: id or URL) and store new items.

    Feeds are fetched at the same time, each within DIGEST_FEED_TIMEOUT. A
    failing feed is reported and recorded on the feed; the others are still
    fetched. The exit status is 1 if any feed failed.
    """
    from digest.sources import feeds as feed_store
    from digest.sources.fetch import FetchLimits

    limits = FetchLimits.from_settings(app.settings, files=True)
    results = feed_store.fetch_all(app.factory, limits, ref)
    if not results:
        click.echo("no feeds followed: add one with `digest feeds add URL`")
    for result in results:
        click.echo(_describe(result))
    failed = [r for r in results if r.error]
    if failed:
        noun = "feed" if len(failed) == 1 else "feeds"
        raise DigestError(f"{len(failed)} {noun} failed (see `digest feeds list`)")


COMMANDS = [feeds]

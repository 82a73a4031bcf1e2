"""``digest demo``: the whole pipeline on embedded defaults, into a local Maildir."""

from __future__ import annotations

import mailbox
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from digest.core.db import make_engine, session_factory, transaction, upgrade
from digest.core.errors import DigestError, SourcesRejected
from digest.core.models import Feed
from digest.core.paths import builtin_seeds
from digest.core.settings import Settings, load_settings
from digest.delivery import service
from digest.delivery.manager import SendSummary
from digest.editions import assemble
from digest.processes.sink import start_sink
from digest.sources import feeds, ingest
from digest.sources.fetch import FetchLimits
from digest.transports.factory import open_transport
from subscribers import csv_import


def run_demo(var_dir: Path, echo: Callable[[str], None]) -> tuple[Path, SendSummary | None]:
    """Init, import seeds, build, send to an in-process capture sink; idempotent on rerun."""
    maildir = var_dir / "mail"
    seeds = builtin_seeds()
    sink = start_sink(maildir)
    try:
        settings = load_settings(
            embedded=True,
            var_dir=var_dir,
            database_url=f"sqlite:///{var_dir / 'digest.db'}",
            smtp_url=f"smtp://{sink.hostname}:{sink.port}",
        )
        engine = make_engine(settings.effective_database_url)
        try:
            upgrade(engine)
            settings.load_signing_key(engine)
            factory = session_factory(engine)
            echo(f"database: {settings.effective_database_url}")
            stories = ingest.import_paths(factory, [seeds / "stories"])
            if stories.errors:
                raise SourcesRejected(stories.errors)
            with transaction(factory) as s:
                people = csv_import.import_csv(s, seeds / "subscribers.csv")
            echo(
                f"imported {len(stories.added)} new stories, {people.added} new subscribers"
                f" from {seeds}"
            )
            echo(_demo_feed(factory, seeds / "feeds" / "demo.xml", settings))
            with transaction(factory) as s:
                built = assemble.build(s)
                built_id = built.id if built else None
            if built_id is None:
                echo("no new stories: sending the latest edition (if anything is left to send)")
            else:
                echo(f"built edition {built_id}")
            transport = open_transport(settings)
            summary = service.send_edition(settings, factory, "latest", transport)
        finally:
            engine.dispose()
    finally:
        sink.stop()
    return maildir, summary


def _demo_feed(factory: sessionmaker[Session], path: Path, settings: Settings) -> str:
    """Follow the seed feed (a file:// URL, all items backfilled) and fetch it."""
    url = path.resolve().as_uri()
    limits = FetchLimits.from_settings(settings, files=True)
    with transaction(factory) as s:
        known = s.scalar(select(Feed.id).where(Feed.url == url))
        if known is None:
            known = feeds.add(s, url, "Demo feed", (), 100, limits=limits).id
    result = feeds.fetch_one(factory, known, limits)
    if result.error:
        raise DigestError(result.error)
    return f"feed {url}: {result.added} new stories"


def count_messages(maildir: Path) -> int:
    return len(mailbox.Maildir(str(maildir), create=False).keys())

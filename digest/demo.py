"""``digest demo``: the whole pipeline on embedded defaults, into a local Maildir."""

from __future__ import annotations

import mailbox
from collections.abc import Callable
from pathlib import Path

from digest import delivery, editions, ingest
from digest.db import make_engine, session_factory, transaction, upgrade
from digest.delivery import SendSummary
from digest.paths import builtin_seeds
from digest.settings import load_settings
from digest.sink import start_sink
from digest.smtp import SmtpTransport, parse_smtp_url
from subscribers import csvio


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
            factory = session_factory(engine)
            echo(f"database: {settings.effective_database_url}")
            with transaction(factory) as s:
                stories = ingest.import_paths(s, [seeds / "stories"])
                people = csvio.import_csv(s, seeds / "subscribers.csv")
            echo(
                f"imported {len(stories.added)} new stories, {people.added} new subscribers"
                f" from {seeds}"
            )
            with transaction(factory) as s:
                built = editions.build(s)
                built_id = built.id if built else None
            if built_id is None:
                echo("no new stories: sending the latest edition (if anything is left to send)")
            else:
                echo(f"built edition {built_id}")
            transport = SmtpTransport(parse_smtp_url(settings.smtp_url))
            summary = delivery.send_edition(settings, factory, "latest", transport)
        finally:
            engine.dispose()
    finally:
        sink.stop()
    return maildir, summary


def count_messages(maildir: Path) -> int:
    return len(mailbox.Maildir(str(maildir), create=False).keys())

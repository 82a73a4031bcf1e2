"""Commands that set up or run processes: init, demo, smtp-sink, serve, schedule, worker."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from types import FrameType

import click

from digest.cli.app import App, pass_app
from digest.core.errors import ConfigError


@click.command()
@pass_app
def init(app: App) -> None:
    """Create or upgrade the database schema (safe to run any number of times)."""
    from digest.core.db import upgrade

    before, after = upgrade(app.engine)
    url = app.engine.url.render_as_string(hide_password=True)
    if before == after:
        click.echo(f"database {url} is up to date (revision {after})")
    else:
        click.echo(f"database {url} upgraded from {before or 'empty'} to revision {after}")
    if app.engine.dialect.name == "postgresql":
        from digest.processes.queue import ensure_schema

        ensure_schema(app.engine)  # procrastinate's tables, for DIGEST_QUEUE; once


@click.command()
@click.option(
    "--var-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("var"),
    show_default=True,
    help="Where the demo keeps its SQLite database and Maildir.",
)
def demo(var_dir: Path) -> None:
    """Run the whole pipeline on embedded defaults, ignoring DIGEST_* settings.

    Starts a capture SMTP server in-process, initialises var/digest.db,
    imports seeds/, builds an edition and sends it; the messages land in the
    Maildir var/mail. Running it again sends nothing twice.
    """
    from digest.cli.sending import describe
    from digest.processes.demo import count_messages, run_demo

    maildir, summary = run_demo(var_dir, click.echo)
    if summary is not None:
        click.echo(describe(summary))
    click.echo(f"messages are in the Maildir {maildir}/new ({count_messages(maildir)} in all)")
    db = f"DIGEST_DATABASE_URL=sqlite:///{var_dir / 'digest.db'}"
    click.echo(f"preview it:   {db} .venv/bin/digest preview latest -o var/latest.html")


@click.command("smtp-sink")
@click.option("--host", default="127.0.0.1", show_default=True, envvar="DIGEST_SINK_HOST")
@click.option("--port", default=1025, show_default=True, envvar="DIGEST_SINK_PORT")
@click.option(
    "--maildir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("var/mail"),
    show_default=True,
    envvar="DIGEST_SINK_MAILDIR",
)
def smtp_sink(host: str, port: int, maildir: Path) -> None:
    """Run a local capture SMTP server that stores every message in a Maildir."""
    from digest.processes.sink import start_sink

    try:
        sink = start_sink(maildir, host, port)
    except (OSError, RuntimeError) as exc:
        raise ConfigError("--port", f"cannot listen on {host}:{port}: {exc}") from None
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    click.echo(f"capturing mail on smtp://{host}:{port} into the Maildir {maildir} (Ctrl-C stops)")
    try:
        while not stop.wait(0.5):
            pass
    finally:
        sink.stop()
        click.echo(f"stopped; {sink.handler.received} messages captured")


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, envvar="DIGEST_HOST")
@click.option("--port", type=int, default=None, help="Default: $PORT or 8000.")
@pass_app
def serve(app: App, host: str, port: int | None) -> None:
    """Run the web app: previews, editions, archive, /api, /metrics and subscriber pages."""
    import uvicorn

    from digest.web.access import check_bind
    from digest.web.app import create_app

    settings = app.settings
    check_bind(settings, host)
    uvicorn.run(create_app(settings, app.factory), host=host, port=port or settings.port)


@click.command()
@pass_app
def schedule(app: App) -> None:
    """Run the clock: build and send an edition at each slot of DIGEST_SCHEDULE.

    Run exactly one clock. SIGTERM stops it cleanly.
    """
    from digest.editions.slots import make_trigger
    from digest.processes.clock import run_clock

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    make_trigger(app.settings)  # fail fast on a bad schedule
    run_clock(app.settings, app.factory)


@click.command()
@click.option("--interval", default=5.0, show_default=True, help="Seconds between polls.")
@click.option("--once", is_flag=True, help="Send what is pending, then exit.")
@pass_app
def worker(app: App, interval: float, once: bool) -> None:
    """Send the pending deliveries of running editions; SIGTERM stops between messages.

    With DIGEST_QUEUE=procrastinate (PostgreSQL) it takes "send a chunk of
    edition E" tasks from the queue instead of polling (--once: until the
    queue is empty), takes over the chunks of workers that died and stays up
    through SMTP and database outages; SIGTERM ends the current chunk between
    two messages and exits.
    """
    from digest.cli.sending import describe
    from digest.processes.worker import run_worker

    run_worker(
        app.settings,
        app.factory,
        lambda summary: click.echo(describe(summary)),
        interval=interval,
        once=once,
    )


COMMANDS = [init, demo, smtp_sink, serve, schedule, worker]

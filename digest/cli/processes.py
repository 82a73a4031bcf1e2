"""Commands that set up or run processes: init, demo, smtp-sink, serve, schedule, worker."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import click

from digest.cli.app import App, pass_app
from digest.core.errors import ConfigError

if TYPE_CHECKING:
    from digest.delivery.manager import SendSummary


# What `digest init` says when it stored the signing key (never the key itself).
KEY_NEWS = {
    "generated": "signing key: generated and stored in the database (every process uses it)",
    "adopted": "signing key: var/secret_key stored in the database (links already mailed work)",
}


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
    origin = app.settings.load_signing_key(app.engine)
    if origin in KEY_NEWS:
        click.echo(KEY_NEWS[origin])
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


WITH_WORKER = click.option(
    "--worker",
    "with_worker",
    is_flag=True,
    envvar="DIGEST_WITH_WORKER",
    help="Also run a worker (the loop of `digest worker`) in this process, for one-box setups.",
)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, envvar="DIGEST_HOST")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Default: $PORT or 8000.")
@WITH_WORKER
@pass_app
def serve(app: App, host: str, port: int | None, with_worker: bool) -> None:
    """Run the web app: previews, editions, archive, /api, /metrics and subscriber pages.

    Sending from the web opens the edition for the workers; a `digest worker`
    (or --worker here) sends it. SIGTERM stops the worker between messages.
    """
    import uvicorn

    from digest.web.access import check_bind
    from digest.web.app import create_app

    settings = app.settings
    check_bind(settings, host)
    config = uvicorn.Config(
        create_app(settings, app.factory), host=host, port=port or settings.port
    )
    stopping = threading.Event()

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            stopping.set()  # a worker beside the web app stops between two messages
            super().handle_exit(sig, frame)

    # uvicorn raises the signal again once it has shut down: land it here, so the
    # process exits 0 (after its worker, if any) instead of dying of the signal.
    _on_signals(stopping)
    if not with_worker:
        Server(config).run()
        return
    from digest.cli.sending import describe
    from digest.processes.worker import worker_alongside

    _log_to_stderr()
    with worker_alongside(
        settings, app.factory, lambda summary: click.echo(describe(summary)), stopping
    ):
        Server(config).run()


@click.command()
@WITH_WORKER
@pass_app
def schedule(app: App, with_worker: bool) -> None:
    """Run the clock: build an edition at each slot of DIGEST_SCHEDULE and open it.

    The clock never sends: a `digest worker` (or --worker here) sends what it
    opened. Run exactly one clock. SIGTERM stops it cleanly.
    """
    from digest.editions.slots import make_trigger
    from digest.processes.clock import run_clock

    _log_to_stderr()
    make_trigger(app.settings)  # fail fast on a bad schedule
    if not with_worker:
        run_clock(app.settings, app.factory)
        return
    from digest.cli.sending import describe
    from digest.processes.worker import worker_alongside

    def on_summary(summary: SendSummary) -> None:
        click.echo(describe(summary))

    stop = threading.Event()
    with worker_alongside(app.settings, app.factory, on_summary, stop):
        run_clock(app.settings, app.factory, stop)


@click.command()
@click.option(
    "--interval",
    default=5.0,
    show_default=True,
    envvar="DIGEST_WORKER_INTERVAL",
    help="Seconds between polls.",
)
@click.option("--once", is_flag=True, help="Send what is pending, then exit.")
@pass_app
def worker(app: App, interval: float, once: bool) -> None:
    """Send the pending deliveries of running editions; SIGTERM stops between messages.

    Workers and `digest send` are the only senders: the clock and the web app
    open editions and leave them to a worker. A worker keeps a heartbeat in the
    database (pages and `digest status` say "waiting for a worker" without
    one) and stays up: an SMTP outage, a refused login, a lost database
    connection or an edition it cannot render is one log line and a retry after
    a backoff (1 s doubling to 60 s). With --once it exits 1 if anything failed.

    With DIGEST_QUEUE=procrastinate (PostgreSQL) it takes "send a chunk of
    edition E" tasks from the queue instead of polling (--once: until the
    queue is empty), takes over the chunks of workers that died and stays up
    through SMTP and database outages; SIGTERM ends the current chunk between
    two messages and exits.
    """
    from digest.cli.sending import describe
    from digest.processes.worker import run_worker

    _log_to_stderr()
    failures = run_worker(
        app.settings,
        app.factory,
        lambda summary: click.echo(describe(summary)),
        interval=interval,
        once=once,
    )
    if once and failures:
        raise click.ClickException(f"{failures} sends failed; see the log lines above")


def _log_to_stderr() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)


def _on_signals(stop: threading.Event) -> None:
    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)


COMMANDS = [init, demo, smtp_sink, serve, schedule, worker]
